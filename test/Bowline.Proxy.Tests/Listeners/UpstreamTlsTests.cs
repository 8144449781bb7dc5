using System.Net;
using Bowline.Proxy.Listeners;
using Bowline.Proxy.Tests.Infrastructure;
using Bowline.Proxy.Tests.Xds;
using Bowline.Proxy.Tls;
using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.DependencyInjection;
using static Bowline.Proxy.Tests.Infrastructure.EnvoyResources;
using Listener = Envoy.Config.Listener.V3.Listener;

namespace Bowline.Proxy.Tests.Listeners;

/// <summary>
/// A sidecar originating mesh mTLS as Istio's auto mTLS configures it (transport_socket_matches on tlsMode, ISTIO_MUTUAL
/// UpstreamTlsContext with the destination's SPIFFE ID), to a STRICT inbound listener: the request arrives, and a
/// server whose identity is not the one expected is refused.
/// </summary>
public sealed class UpstreamTlsTests : IAsyncLifetime
{
    private static readonly System.Security.Cryptography.X509Certificates.X509Certificate2 Root = TestPki.Root();
    private readonly CompilerHarness _serverCompiler = new();
    private readonly SecretStore _serverSecrets = new();
    private readonly int _serverPort = Ports.Free();
    private readonly int _outboundPort = Ports.Free();
    private ServiceProvider? _services;
    private ListenerServer? _server;
    private FakeAdsServer? _ads;
    private RunningProxy? _client;

    public async Task InitializeAsync()
    {
        _serverSecrets.SetCertificate("default", new CertificateSecret(TestPki.Leaf(Root, [TestPki.Spiffe("reviews")]), []));
        _serverSecrets.SetTrustBundle("ROOTCA", [Root]);
        _services = new ServiceCollection().AddSingleton(_serverSecrets).BuildServiceProvider();
        var inbound = new Listener
        {
            Name = "virtualInbound",
            Address = SocketAddress("127.0.0.1", _serverPort),
            ListenerFilters = { new ListenerFilter { Name = "envoy.filters.listener.tls_inspector", TypedConfig = Any.Pack(new Envoy.Extensions.Filters.Listener.TlsInspector.V3.TlsInspector()) } },
            FilterChains = { MeshChain() },
        };
        var compiled = _serverCompiler.Compile(inbound).Listeners["virtualInbound"];
        _server = await _serverCompiler.ServeAsync(compiled, _services);

        _ads = await FakeAdsServer.StartAsync();
        _client = await RunningProxy.StartAsync(_ads.Address);
        var secrets = _client.Host.Services.GetRequiredService<SecretStore>();
        secrets.SetCertificate("default", new CertificateSecret(TestPki.Leaf(Root, [TestPki.Spiffe("productpage")]), []));
        secrets.SetTrustBundle("ROOTCA", [Root]);
    }

    public async Task DisposeAsync()
    {
        await _client!.DisposeAsync();
        await _ads!.DisposeAsync();
        await _server!.StopAsync(Timeouts.Token());
        await _server.DisposeAsync();
        _services!.Dispose();
        _serverCompiler.Dispose();
    }

    private static readonly ConfigSource Sds = new() { Ads = new AggregatedConfigSource(), ResourceApiVersion = ApiVersion.V3 };

    private static FilterChain MeshChain()
    {
        var hcm = new HttpConnectionManager
        {
            StatPrefix = "inbound",
            RouteConfig = RouteConfig("inbound", VirtualHost("all", ["*"], new Route
            {
                Match = Prefix("/"),
                DirectResponse = new DirectResponseAction { Status = 200, Body = new DataSource { InlineString = "over mtls" } },
            })),
        };
        hcm.HttpFilters.Add(RouterFilter());
        var tls = new DownstreamTlsContext { RequireClientCertificate = true, CommonTlsContext = Common("spiffe://cluster.local/", exact: false, "h2", "http/1.1") };
        return new FilterChain
        {
            Name = "mtls",
            FilterChainMatch = new FilterChainMatch { TransportProtocol = "tls" },
            Filters = { HttpConnectionManagerFilter(hcm) },
            TransportSocket = new TransportSocket { Name = "envoy.transport_sockets.tls", TypedConfig = Any.Pack(tls) },
        };
    }

    private static CommonTlsContext Common(string san, bool exact, params string[] alpn) => new()
    {
        TlsCertificateSdsSecretConfigs = { new SdsSecretConfig { Name = "default", SdsConfig = Sds } },
        AlpnProtocols = { alpn },
        CombinedValidationContext = new CommonTlsContext.Types.CombinedCertificateValidationContext
        {
            DefaultValidationContext = new CertificateValidationContext
            {
                MatchTypedSubjectAltNames =
                {
                    new SubjectAltNameMatcher
                    {
                        SanType = SubjectAltNameMatcher.Types.SanType.Uri,
                        Matcher = exact ? new Envoy.Type.Matcher.V3.StringMatcher { Exact = san } : new Envoy.Type.Matcher.V3.StringMatcher { Prefix = san },
                    },
                },
            },
            ValidationContextSdsSecretConfig = new SdsSecretConfig { Name = "ROOTCA", SdsConfig = Sds },
        },
    };

    /// <summary>Istio's auto mTLS cluster: tlsMode=istio endpoints get ISTIO_MUTUAL, the rest plaintext.</summary>
    private static Cluster AutoMtlsCluster(string expectedServer)
    {
        var cluster = EdsCluster(ReviewsCluster);
        var tls = new UpstreamTlsContext { Sni = "outbound_.9080_._.reviews.default.svc.cluster.local", CommonTlsContext = Common(expectedServer, exact: true, "istio-peer-exchange", "istio") };
        cluster.TransportSocketMatches.Add(new Cluster.Types.TransportSocketMatch
        {
            Name = "tlsMode-istio",
            Match = new Struct { Fields = { ["tlsMode"] = Value.ForString("istio") } },
            TransportSocket = new TransportSocket { Name = "envoy.transport_sockets.tls", TypedConfig = Any.Pack(tls) },
        });
        cluster.TransportSocketMatches.Add(new Cluster.Types.TransportSocketMatch
        {
            Name = "tlsMode-disabled",
            Match = new Struct(),
            TransportSocket = new TransportSocket { Name = "envoy.transport_sockets.raw_buffer" },
        });
        return cluster;
    }

    private async Task ConfigureAsync(string expectedServer)
    {
        await _ads!.NextRequestAsync();
        await _ads.NextRequestAsync();
        await _ads.PushAsync(TypeUrls.Cluster, "c1", "n-c1", AutoMtlsCluster(expectedServer));
        var endpoints = Endpoints(ReviewsCluster, ("127.0.0.1", _serverPort, 1));
        endpoints.Endpoints[0].LbEndpoints[0].Metadata = new Metadata { FilterMetadata = { [UpstreamTransport.MetadataKey] = new Struct { Fields = { ["tlsMode"] = Value.ForString("istio") } } } };
        await _ads.PushAsync(TypeUrls.ClusterLoadAssignment, "e1", "n-e1", endpoints);
        var listener = Listener("outbound", _outboundPort, "127.0.0.1", HttpConnectionManagerFilter(Hcm("outbound", "9080")));
        await _ads.PushAsync(TypeUrls.Listener, "l1", "n-l1", listener);
        await _ads.PushAsync(TypeUrls.RouteConfiguration, "r1", "n-r1", RouteConfig("9080", VirtualHost("reviews", ["*"], ClusterRoute("default", Prefix("/"), ReviewsCluster))));
        await _client!.Host.Snapshots.WaitUntilAsync(s => s.Listeners.TryGetValue("outbound", out var l) && l.IsWarm && s.Clusters.TryGetValue(ReviewsCluster, out var c) && c.Current?.Hosts.All.Count == 1, Timeouts.Token());
    }

    [Fact]
    public async Task AutoMtls_ExpectedServerIdentity_RequestArrivesOverMtls()
    {
        await ConfigureAsync(TestPki.Spiffe("reviews"));
        using var http = new HttpClient { Timeout = Timeouts.Default };

        var body = await http.GetStringAsync($"http://127.0.0.1:{_outboundPort}/");

        Assert.Equal("over mtls", body);
        Assert.Equal(1, _serverCompiler.Stats.ValueOf($"listener.127.0.0.1_{_serverPort}.ssl.handshake"));
    }

    [Fact]
    public async Task AutoMtls_ServerIsAnotherIdentity_IsRefusedWithUpstreamConnectionFailure()
    {
        await ConfigureAsync(TestPki.Spiffe("ratings"));
        using var http = new HttpClient { Timeout = Timeouts.Default };

        using var response = await http.GetAsync($"http://127.0.0.1:{_outboundPort}/");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains("UF", response.Headers.GetValues("x-bowline-response-flags").Single());
        // TLS 1.3: the server's side completes before the client refuses its certificate; it answered no request.
        Assert.Equal(0, _serverCompiler.Stats.ValueOf("http.inbound.downstream_rq_total"));
    }
}
