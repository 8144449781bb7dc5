using System.Collections.Concurrent;
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

namespace Bowline.Proxy.Tests.Clusters;

/// <summary>
/// Envoy's max_requests_per_connection on HTTP/1.1 upstreams, through the router to a real Kestrel upstream that
/// counts the requests each of its TCP connections carried: no connection carries more than N, and none fails.
/// </summary>
public sealed class MaxRequestsPerConnectionTests
{
    private static readonly System.Security.Cryptography.X509Certificates.X509Certificate2 Root = TestPki.Root();

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    public async Task Sequential_FiftyRequests_EachConnectionCarriesExactlyNExceptTheLast(int n)
    {
        await using var mesh = await Mesh.StartAsync(n);
        using var http = mesh.Client();

        for (var i = 0; i < 50; i++)
        {
            using var response = await http.GetAsync($"/get/{i}");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal($"/get/{i}", await response.Content.ReadAsStringAsync());
        }

        var counts = mesh.RequestsPerConnection();
        Assert.Equal(50, counts.Sum());
        Assert.Equal((50 + n - 1) / n, counts.Count);
        Assert.All(counts.Take(counts.Count - 1), c => Assert.Equal(n, c));
        Assert.Equal(50 % n == 0 ? n : 50 % n, counts[^1]);
    }

    /// <remarks>
    /// With max_connections 2, requests queue in the handler, and a connection it gets back is handed straight to a
    /// waiting request (no idle check): the spent connection is replaced under that request's first write.
    /// </remarks>
    [Theory]
    [InlineData(2, null)]
    [InlineData(5, null)]
    [InlineData(3, 2)]
    public async Task Concurrency4_GetsAndPostsWithBodies_NoConnectionCarriesMoreThanN_AndNoneFails(int n, int? maxConnections)
    {
        await using var mesh = await Mesh.StartAsync(n, maxConnections: maxConnections);
        using var http = mesh.Client();
        var failures = new ConcurrentQueue<string>();

        await Task.WhenAll(Enumerable.Range(0, 4).Select(worker => Task.Run(async () =>
        {
            for (var i = 0; i < 50; i++)
            {
                var path = $"/w{worker}/{i}";
                // Every other request has a body: SocketsHttpHandler never retries those itself, so a connection
                // refusing one would fail it.
                using var response = i % 2 == 0
                    ? await http.GetAsync(path)
                    : await http.PostAsync(path, new StringContent(new string('x', 100 + i)));
                var body = await response.Content.ReadAsStringAsync();
                var expected = i % 2 == 0 ? path : $"{path} {100 + i}";
                if (response.StatusCode != HttpStatusCode.OK || body != expected)
                {
                    failures.Enqueue($"{path}: {(int)response.StatusCode} {body}");
                }
            }
        }))).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Empty(failures);
        var counts = mesh.RequestsPerConnection();
        Assert.Equal(200, counts.Sum());
        Assert.All(counts, c => Assert.InRange(c, 1, n));
        Assert.True(counts.Count >= 200 / n, $"{counts.Count} connections for 200 requests at {n} each");
    }

    [Fact]
    public async Task Tls_TwentySequentialRequests_EachReplacementConnectionHandshakesAgain()
    {
        await using var mesh = await Mesh.StartAsync(4, tls: true);
        using var http = mesh.Client();

        for (var i = 0; i < 20; i++)
        {
            using var response = await http.GetAsync($"/tls/{i}");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal([4, 4, 4, 4, 4], mesh.RequestsPerConnection());
    }

    /// <summary>A proxy with one HTTP/1.1 cluster of one Kestrel endpoint, whose requests are counted per TCP connection.</summary>
    private sealed class Mesh : IAsyncDisposable
    {
        private readonly ConcurrentDictionary<string, int> _requests = new(StringComparer.Ordinal);
        private readonly ConcurrentQueue<string> _connections = new();
        private WebApplication? _upstream;
        private FakeAdsServer? _ads;
        private RunningProxy? _proxy;
        private readonly int _outboundPort = Ports.Free();

        public static async Task<Mesh> StartAsync(int maxRequestsPerConnection, bool tls = false, int? maxConnections = null)
        {
            var mesh = new Mesh();
            try
            {
                await mesh.InitializeAsync(maxRequestsPerConnection, tls, maxConnections);
                return mesh;
            }
            catch
            {
                await mesh.DisposeAsync();
                throw;
            }
        }

        private async Task InitializeAsync(int maxRequestsPerConnection, bool tls, int? maxConnections)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            var certificate = tls ? TestPki.Leaf(Root, [], dnsNames: ["api.example.com"]) : null;
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l =>
            {
                if (certificate is not null)
                {
                    l.UseHttps(certificate);
                }
            }));
            _upstream = builder.Build();
            _upstream.Run(async context =>
            {
                if (_requests.AddOrUpdate(context.Connection.Id, 1, (_, c) => c + 1) == 1)
                {
                    _connections.Enqueue(context.Connection.Id);
                }
                var reply = context.Request.Path.Value!;
                if (HttpMethods.IsPost(context.Request.Method))
                {
                    using var reader = new StreamReader(context.Request.Body);
                    reply += $" {(await reader.ReadToEndAsync()).Length}";
                }
                await context.Response.WriteAsync(reply);
            });
            await _upstream.StartAsync(Timeouts.Token());
            var upstreamPort = new Uri(_upstream.Urls.First()).Port;

            var cluster = EdsCluster(ReviewsCluster);
            cluster.TypedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] = Any.Pack(new Envoy.Extensions.Upstreams.Http.V3.HttpProtocolOptions
            {
                CommonHttpProtocolOptions = new HttpProtocolOptions { MaxRequestsPerConnection = (uint)maxRequestsPerConnection },
                ExplicitHttpConfig = new() { HttpProtocolOptions = new Http1ProtocolOptions() },
                UpstreamHttpProtocolOptions = tls ? new UpstreamHttpProtocolOptions { AutoSni = true, AutoSanValidation = true } : null,
            });
            if (maxConnections is { } limit)
            {
                cluster.CircuitBreakers = new Envoy.Config.Cluster.V3.CircuitBreakers { Thresholds = { new Envoy.Config.Cluster.V3.CircuitBreakers.Types.Thresholds { MaxConnections = (uint)limit } } };
            }
            if (tls)
            {
                var context = new UpstreamTlsContext
                {
                    CommonTlsContext = new CommonTlsContext
                    {
                        ValidationContext = new CertificateValidationContext { TrustedCa = new DataSource { InlineString = Root.ExportCertificatePem() } },
                    },
                };
                cluster.TransportSocket = new TransportSocket { Name = "envoy.transport_sockets.tls", TypedConfig = Any.Pack(context) };
            }
            _ads = await FakeAdsServer.StartAsync();
            _proxy = await RunningProxy.StartAsync(_ads.Address);
            await _ads.NextRequestAsync();
            await _ads.NextRequestAsync();
            await _ads.PushAsync(TypeUrls.Cluster, "c1", "n-c1", cluster);
            await _ads.PushAsync(TypeUrls.ClusterLoadAssignment, "e1", "n-e1", Endpoints(ReviewsCluster, ("127.0.0.1", upstreamPort, 1)));
            await _ads.PushAsync(TypeUrls.Listener, "l1", "n-l1", Listener("outbound", _outboundPort, "127.0.0.1", HttpConnectionManagerFilter(Hcm("outbound", "80"))));
            await _ads.PushAsync(TypeUrls.RouteConfiguration, "r1", "n-r1", RouteConfig("80", VirtualHost("all", ["*"], ClusterRoute("default", Prefix("/"), ReviewsCluster))));
            await _proxy.Host.Snapshots.WaitUntilAsync(s => s.Listeners.TryGetValue("outbound", out var l) && l.IsWarm
                && s.Clusters.TryGetValue(ReviewsCluster, out var c) && c.Current?.Hosts.All.Count == 1, Timeouts.Token());
        }

        /// <summary>A client of the proxy's outbound listener; the host name is the upstream certificate's (auto_sni).</summary>
        public HttpClient Client() => new()
        {
            BaseAddress = new Uri($"http://127.0.0.1:{_outboundPort}"),
            Timeout = Timeouts.Default,
            DefaultRequestHeaders = { Host = "api.example.com" },
        };

        /// <summary>Requests each upstream connection carried, in the order the connections were first used.</summary>
        public List<int> RequestsPerConnection() => [.. _connections.Select(id => _requests[id])];

        public async ValueTask DisposeAsync()
        {
            if (_proxy is not null)
            {
                await _proxy.DisposeAsync();
            }
            if (_ads is not null)
            {
                await _ads.DisposeAsync();
            }
            if (_upstream is not null)
            {
                await _upstream.DisposeAsync();
            }
        }
    }
}
