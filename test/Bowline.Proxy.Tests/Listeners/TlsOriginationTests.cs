using System.Net;
using Bowline.Proxy.Tests.Infrastructure;
using Bowline.Proxy.Tests.Xds;
using Bowline.Xds;
using Envoy.Config.Core.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using static Bowline.Proxy.Tests.Infrastructure.EnvoyResources;

namespace Bowline.Proxy.Tests.Listeners;

/// <summary>
/// TLS origination to a service outside the mesh, as Istio's DestinationRule <c>tls: SIMPLE</c> without <c>sni</c>
/// configures it: the CA file as trusted_ca, and Envoy's auto_sni and auto_san_validation, so the request's host name
/// is the SNI and the server's certificate must be for it.
/// </summary>
public sealed class TlsOriginationTests : IAsyncLifetime
{
    private static readonly System.Security.Cryptography.X509Certificates.X509Certificate2 Root = TestPki.Root();
    private readonly int _outboundPort = Ports.Free();
    private WebApplication? _external;
    private int _externalPort;
    private FakeAdsServer? _ads;
    private RunningProxy? _client;

    public async Task InitializeAsync()
    {
        var certificate = TestPki.Leaf(Root, [], dnsNames: ["api.example.com"]);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(certificate)));
        _external = builder.Build();
        _external.Run(context => context.Response.WriteAsync($"external saw sni-host {context.Request.Host.Host}"));
        await _external.StartAsync(Timeouts.Token());
        _externalPort = new Uri(_external.Urls.First()).Port;
        _ads = await FakeAdsServer.StartAsync();
        _client = await RunningProxy.StartAsync(_ads.Address);

        var cluster = EdsCluster(ReviewsCluster);
        var tls = new UpstreamTlsContext
        {
            CommonTlsContext = new CommonTlsContext
            {
                ValidationContext = new CertificateValidationContext { TrustedCa = new DataSource { InlineString = Root.ExportCertificatePem() } },
            },
        };
        cluster.TransportSocket = new TransportSocket { Name = "envoy.transport_sockets.tls", TypedConfig = Any.Pack(tls) };
        cluster.TypedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] = Any.Pack(new Envoy.Extensions.Upstreams.Http.V3.HttpProtocolOptions
        {
            ExplicitHttpConfig = new() { HttpProtocolOptions = new Http1ProtocolOptions() },
            UpstreamHttpProtocolOptions = new UpstreamHttpProtocolOptions { AutoSni = true, AutoSanValidation = true },
        });
        await _ads.NextRequestAsync();
        await _ads.NextRequestAsync();
        await _ads.PushAsync(TypeUrls.Cluster, "c1", "n-c1", cluster);
        await _ads.PushAsync(TypeUrls.ClusterLoadAssignment, "e1", "n-e1", Endpoints(ReviewsCluster, ("127.0.0.1", _externalPort, 1)));
        await _ads.PushAsync(TypeUrls.Listener, "l1", "n-l1", Listener("outbound", _outboundPort, "127.0.0.1", HttpConnectionManagerFilter(Hcm("outbound", "80"))));
        await _ads.PushAsync(TypeUrls.RouteConfiguration, "r1", "n-r1", RouteConfig("80", VirtualHost("all", ["*"], ClusterRoute("default", Prefix("/"), ReviewsCluster))));
        await _client.Host.Snapshots.WaitUntilAsync(s => s.Listeners.TryGetValue("outbound", out var l) && l.IsWarm && s.Clusters.TryGetValue(ReviewsCluster, out var c) && c.Current?.Hosts.All.Count == 1, Timeouts.Token());
    }

    public async Task DisposeAsync()
    {
        await _client!.DisposeAsync();
        await _ads!.DisposeAsync();
        await _external!.DisposeAsync();
    }

    private async Task<HttpResponseMessage> GetAsync(string host)
    {
        using var http = new HttpClient { Timeout = Timeouts.Default };
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{_outboundPort}/") { Headers = { Host = host } };
        return await http.SendAsync(request);
    }

    [Fact]
    public async Task AutoSni_HostTheCertificateIsFor_IsServedOverTls()
    {
        using var response = await GetAsync("api.example.com");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("external saw sni-host api.example.com", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task AutoSanValidation_HostTheCertificateIsNotFor_IsRefused()
    {
        using var response = await GetAsync("other.example.com");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains("UF", response.Headers.GetValues("x-bowline-response-flags").Single());
    }

    [Fact]
    public async Task AutoSni_SecondHostOnTheSameEndpoint_GetsItsOwnConnectionAndIsRefused()
    {
        // The first host's verified connection is pooled; the second host must not ride on it.
        using (var first = await GetAsync("api.example.com"))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        using var second = await GetAsync("other.example.com");

        Assert.True(second.StatusCode == HttpStatusCode.ServiceUnavailable, await second.Content.ReadAsStringAsync());
    }
}
