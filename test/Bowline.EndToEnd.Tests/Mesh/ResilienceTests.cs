using System.Net;
using Bowline.EndToEnd.Tests.Infrastructure;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>
/// The traffic-management features that make a mesh safe to run production traffic through, measured through real
/// sidecars and real backends: retries, Istio's default retry policy, retry budgets, outlier detection, circuit
/// breakers, fault injection, consistent hashing and mirroring. Backends fail in fixed patterns and the proxies roll
/// seeded dice, so every count asserted here is reproducible.
/// </summary>
public sealed class ResilienceTests
{
    private const string Host = "http://reviews:9080";
    private const string Cluster = "outbound|9080||reviews.default.svc.cluster.local";
    private static readonly Dictionary<string, string> ClientLabels = new() { ["app"] = "productpage" };

    private sealed record Mesh(MeshHarness Harness, Sidecar Client, List<TestBackend> Backends, List<Sidecar> Servers) : IAsyncDisposable
    {
        public long Stat(string name) => Client.Host.Stats.ValueOf(name);

        /// <summary>Waits for the client sidecar's view of a cluster to satisfy <paramref name="condition"/> (an ejection, a host added).</summary>
        public Task WaitForClusterAsync(string cluster, Func<Bowline.Proxy.Clusters.ClusterSnapshot?, bool> condition, TimeSpan bound) =>
            Client.Host.Snapshots.Current.Clusters[cluster].WaitUntilAsync(condition, Timeouts.Token(bound)).Within(bound);

        public async ValueTask DisposeAsync()
        {
            await Harness.DisposeAsync();
            foreach (var backend in Backends)
            {
                await backend.DisposeAsync();
            }
        }
    }

    /// <summary>reviews backends (named v1, v2, ...) behind their sidecars, and a productpage sidecar with seeded dice to call them from.</summary>
    private static async Task<Mesh> StartAsync(int backends, params (string File, string Yaml)[] config)
    {
        var started = new List<TestBackend>();
        for (var i = 1; i <= backends; i++)
        {
            started.Add(await TestBackend.StartAsync($"v{i}"));
        }
        var harness = await MeshHarness.StartAsync([("reviews.yaml", MeshYaml.Service("reviews", 9080)), ("reviews-dr.yaml", MeshYaml.Subsets("reviews", [.. started.Select(b => b.Name)])), .. config]);
        var servers = new List<Sidecar>();
        foreach (var backend in started)
        {
            servers.Add(await harness.StartSidecarAsync($"reviews-{backend.Name}", new Dictionary<string, string> { ["app"] = "reviews", ["version"] = backend.Name }, [("http", 9080, backend.Port)]));
        }
        var client = await harness.StartSidecarAsync("productpage-v1", ClientLabels, [], new SeededRandom(42), Cluster);
        await client.Host.Snapshots.WaitUntilAsync(s => s.Clusters.TryGetValue(Cluster, out var c) && c.Current?.Hosts.Available.Length == backends, Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        return new Mesh(harness, client, started, servers);
    }

    private static string VirtualService(string http) => $$"""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: reviews, namespace: default}
        spec:
          hosts: [reviews]
          http:
        {{http}}
        """;

    private static string DestinationRule(string trafficPolicy) => $$"""
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: reviews, namespace: default}
        spec:
          host: reviews
          trafficPolicy:
        {{trafficPolicy}}
        """;

    private static async Task<Dictionary<int, int>> StatusesAsync(HttpClient http, string path, int requests, Action<HttpRequestMessage>? shape = null)
    {
        var statuses = new Dictionary<int, int>();
        for (var i = 0; i < requests; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, Host + path);
            shape?.Invoke(request);
            using var response = await http.SendAsync(request).Within(Timeouts.Short);
            statuses[(int)response.StatusCode] = statuses.GetValueOrDefault((int)response.StatusCode) + 1;
        }
        return statuses;
    }

    [Fact]
    public async Task Retries3_BackendFailing30Percent_ClientSeesNoFailure()
    {
        await using var mesh = await StartAsync(1, ("reviews-vs.yaml", VirtualService("""
              - route:
                - destination: {host: reviews}
                retries: {attempts: 3, retryOn: 5xx}
            """)));
        using var http = mesh.Client.Client();

        var statuses = await StatusesAsync(http, "/flaky/3", 200);

        // The backend fails 3 of every 10 requests it receives, retries included: R retries make 200 + R requests of
        // which R fail, so R = 0.3 × (200 + R), 86 when rounded to the pattern.
        Assert.Equal(200, statuses.GetValueOrDefault(200));
        var retries = mesh.Stat($"cluster.{Cluster}.upstream_rq_retry");
        Assert.Equal(86, retries);
        Assert.Equal(200 + retries, mesh.Backends[0].Received.Count(r => r.Path == "/flaky/3"));
    }

    [Fact]
    public async Task NoRetriesFor503_BackendFailing30Percent_ClientSeesThoseFailures()
    {
        // Istio's default policy (no retries field) retries connect failures and refused streams, not a 503 answer.
        await using var mesh = await StartAsync(1);
        using var http = mesh.Client.Client();

        var statuses = await StatusesAsync(http, "/flaky/3", 200);

        Assert.Equal(60, statuses.GetValueOrDefault(503));
        Assert.Equal(140, statuses.GetValueOrDefault(200));
    }

    [Fact]
    public async Task DeadEndpointStillRegistered_IstioDefaultRetries_NoRequestFails()
    {
        // One of two endpoints dies (its sidecar is gone, so connections to it are refused) but stays registered:
        // Istio's default policy retries the connect failure on the other host.
        await using var mesh = await StartAsync(2);
        using var http = mesh.Client.Client();
        await mesh.Servers[0].Host.StopAsync().Within(Timeouts.Long);

        var statuses = await StatusesAsync(http, "/r", 300);

        Assert.Equal(300, statuses.GetValueOrDefault(200));
        Assert.True(mesh.Stat($"cluster.{Cluster}.upstream_cx_connect_fail") > 0);
        Assert.True(mesh.Stat($"cluster.{Cluster}.upstream_rq_retry_success") > 0);
    }

    [Fact]
    public async Task DeadEndpointWithOutlierDetection_LeavesRotation()
    {
        await using var mesh = await StartAsync(2, ("reviews-dr.yaml", DestinationRule("""
                outlierDetection: {consecutive5xxErrors: 2, interval: 10s, baseEjectionTime: 60s, maxEjectionPercent: 100}
            """)));
        using var http = mesh.Client.Client();
        await mesh.Servers[0].Host.StopAsync().Within(Timeouts.Long);

        var before = await StatusesAsync(http, "/r", 50);
        await mesh.WaitForClusterAsync(Cluster, c => c?.Hosts.Available.Length == 1, Timeouts.Short);
        var failures = mesh.Stat($"cluster.{Cluster}.upstream_cx_connect_fail");
        var after = await StatusesAsync(http, "/r", 100);

        Assert.Equal(50, before.GetValueOrDefault(200));
        Assert.Equal(100, after.GetValueOrDefault(200));
        Assert.Equal(failures, mesh.Stat($"cluster.{Cluster}.upstream_cx_connect_fail"));
    }

    [Fact]
    public async Task OutlierDetection_FailingEndpoint_IsEjectedAndReturnsAfterTheEjectionTime()
    {
        await using var mesh = await StartAsync(2,
            ("reviews-vs.yaml", VirtualService("""
              - route:
                - destination: {host: reviews}
                retries: {attempts: 0}
            """)),
            ("reviews-dr.yaml", DestinationRule("""
                outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 3s, maxEjectionPercent: 100}
            """)));
        using var http = mesh.Client.Client();
        // v1 answers 500, v2 200: after v1's third 500 in a row it is ejected. The ejection is recorded just after the
        // response is proxied, so one more request may reach v1 meanwhile.
        var fiveHundreds = 0;
        var cluster = mesh.Client.Host.Snapshots.Current.Clusters[Cluster];
        for (var i = 0; i < 200 && cluster.Current?.Hosts.Available.Length == 2; i++)
        {
            fiveHundreds += (await StatusesAsync(http, "/status-if/v1/500", 1)).GetValueOrDefault(500);
        }
        await mesh.WaitForClusterAsync(Cluster, c => c?.Hosts.Available.Length == 1, Timeouts.Short);
        var during = await StatusesAsync(http, "/status-if/v1/500", 50);
        await mesh.WaitForClusterAsync(Cluster, c => c?.Hosts.Available.Length == 2, Timeouts.Long);
        var after = await StatusesAsync(http, "/status-if/v1/500", 40);

        Assert.InRange(fiveHundreds, 3, 4);
        Assert.Equal(50, during.GetValueOrDefault(200));
        Assert.True(after.GetValueOrDefault(500) >= 1, "the endpoint returned to rotation after its ejection time");
        // Back in rotation, v1 keeps failing: the 40 requests after its return may eject it a second time.
        Assert.InRange(mesh.Stat($"cluster.{Cluster}.outlier_detection.ejections_enforced_consecutive_5xx"), 1, 2);
    }

    [Fact]
    public async Task CircuitBreaker_OneConnectionOnePending_OverflowIs503UO_AndCounted()
    {
        await using var mesh = await StartAsync(1,
            ("reviews-vs.yaml", VirtualService("""
              - route:
                - destination: {host: reviews}
                retries: {attempts: 0}
            """)),
            ("reviews-dr.yaml", DestinationRule("""
                connectionPool:
                  tcp: {maxConnections: 1}
                  http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
            """)));
        using var http = mesh.Client.Client(Timeouts.Long);

        var responses = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => http.GetAsync(Host + "/slow/1500"))).Within(Timeouts.Long);

        var overflowed = responses.Where(r => r.StatusCode == HttpStatusCode.ServiceUnavailable).ToList();
        Assert.InRange(overflowed.Count, 1, 8);
        Assert.All(overflowed, r => Assert.Equal("UO", r.Headers.GetValues("x-bowline-response-flags").Single()));
        Assert.Equal(overflowed.Count, mesh.Stat($"cluster.{Cluster}.upstream_rq_pending_overflow"));
        Assert.Equal(10 - overflowed.Count, responses.Count(r => r.IsSuccessStatusCode));
    }

    [Fact]
    public async Task FaultAbort50Percent_Over4000Requests_IsWithinThreePoints_AndFlaggedFI()
    {
        await using var mesh = await StartAsync(1, ("reviews-vs.yaml", VirtualService("""
              - fault:
                  abort: {httpStatus: 418, percentage: {value: 50}}
                route:
                - destination: {host: reviews}
            """)));
        using var http = mesh.Client.Client();

        var statuses = await StatusesAsync(http, "/r", 4000);

        Assert.InRange(statuses.GetValueOrDefault(418), 1880, 2120);
        Assert.Equal(4000 - statuses.GetValueOrDefault(418), statuses.GetValueOrDefault(200));
        Assert.Equal(statuses.GetValueOrDefault(418), mesh.Stat("bowline.response_flags.FI"));
    }

    [Fact]
    public async Task FaultDelay_EveryRequestDelayed_AndFlaggedDI()
    {
        await using var mesh = await StartAsync(1, ("reviews-vs.yaml", VirtualService("""
              - fault:
                  delay: {fixedDelay: 50ms, percentage: {value: 100}}
                route:
                - destination: {host: reviews}
            """)));
        using var http = mesh.Client.Client();

        var statuses = await StatusesAsync(http, "/r", 20);

        Assert.Equal(20, statuses.GetValueOrDefault(200));
        Assert.Equal(20, mesh.Stat("bowline.response_flags.DI"));
    }

    [Fact]
    public async Task ConsistentHashOnHeader_KeyStaysOnOneEndpoint_AndAddingAnEndpointMovesAboutAQuarter()
    {
        await using var mesh = await StartAsync(3, ("reviews-dr.yaml", DestinationRule("""
                loadBalancer:
                  consistentHash: {httpHeaderName: x-user}
            """)));
        using var http = mesh.Client.Client();

        async Task<Dictionary<string, string>> PlacementAsync(int repeats)
        {
            var placement = new Dictionary<string, string>();
            for (var key = 0; key < 200; key++)
            {
                for (var r = 0; r < repeats; r++)
                {
                    using var request = new HttpRequestMessage(HttpMethod.Get, Host + "/r") { Headers = { { "x-user", $"user-{key}" } } };
                    using var response = await http.SendAsync(request).Within(Timeouts.Short);
                    var backend = response.Headers.GetValues("x-backend").Single();
                    Assert.Equal(placement.GetValueOrDefault($"user-{key}", backend), backend);
                    placement[$"user-{key}"] = backend;
                }
            }
            return placement;
        }

        var three = await PlacementAsync(5);
        var fourth = await TestBackend.StartAsync("v4");
        mesh.Backends.Add(fourth);
        await mesh.Harness.StartSidecarAsync("reviews-v4", new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v4" }, [("http", 9080, fourth.Port)]);
        await mesh.WaitForClusterAsync(Cluster, c => c?.Hosts.Available.Length == 4, Timeouts.Short);
        var four = await PlacementAsync(1);

        Assert.Equal(3, three.Values.Distinct().Count());
        // Ideal is a quarter of the keys, all to the new endpoint. Envoy's ring gives each host ceil(1024 / N) points, so a
        // host added also thins the others' points and some keys move between old hosts: about a third move in all.
        var moved = three.Keys.Count(k => three[k] != four[k]);
        Assert.InRange(moved, 30, 90);
        Assert.InRange(four.Values.Count(v => v == "v4"), 25, 75);
    }

    [Fact]
    public async Task Mirror100Percent_MirrorReceivesEveryRequestWithShadowAuthority()
    {
        await using var mesh = await StartAsync(2, ("reviews-vs.yaml", VirtualService("""
              - route:
                - destination: {host: reviews, subset: v1}
                mirror: {host: reviews, subset: v2}
                mirrorPercentage: {value: 100}
            """)));
        await mesh.Client.Host.Snapshots.WaitUntilAsync(s => s.Clusters.ContainsKey("outbound|9080|v2|reviews.default.svc.cluster.local"), Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        using var http = mesh.Client.Client();

        var statuses = await StatusesAsync(http, "/mirrored", 30);
        await mesh.Backends[1].WaitUntilReceivedAsync(received => received.Count(r => r.Path == "/mirrored") == 30, Timeouts.Short);

        Assert.Equal(30, statuses.GetValueOrDefault(200));
        Assert.Equal(30, mesh.Backends[0].Received.Count(r => r.Path == "/mirrored"));
        Assert.All(mesh.Backends[1].Received.Where(r => r.Path == "/mirrored"), r => Assert.StartsWith("reviews-shadow", r.Host, StringComparison.Ordinal));
    }

    [Fact]
    public async Task RouteActions_RedirectDirectResponseRewriteAndHeaders_AsIstioDescribes()
    {
        await using var mesh = await StartAsync(1, ("reviews-vs.yaml", VirtualService("""
              - match: [{uri: {prefix: /old}}]
                redirect: {uri: /new, redirectCode: 302}
              - match: [{uri: {exact: /teapot}}]
                directResponse: {status: 418, body: {string: short and stout}}
              - match: [{uri: {prefix: /v1/}}]
                rewrite: {uri: /api/}
                headers:
                  request: {set: {x-added: yes}}
                  response: {add: {x-served-by: bowline}}
                route:
                - destination: {host: reviews}
            """)));
        using var http = new HttpClient(new SocketsHttpHandler { Proxy = new WebProxy($"http://127.0.0.1:{mesh.Client.OutboundPort}"), UseProxy = true, AllowAutoRedirect = false }) { Timeout = Timeouts.Short };

        using var redirect = await http.GetAsync(Host + "/old/page").Within(Timeouts.Short);
        using var teapot = await http.GetAsync(Host + "/teapot").Within(Timeouts.Short);
        using var rewritten = await http.GetAsync(Host + "/v1/items").Within(Timeouts.Short);

        Assert.Equal(HttpStatusCode.Found, redirect.StatusCode);
        Assert.Equal("http://reviews:9080/new", redirect.Headers.Location?.ToString());
        Assert.Equal((HttpStatusCode)418, teapot.StatusCode);
        Assert.Equal("short and stout", await teapot.Content.ReadAsStringAsync());
        Assert.Contains("path=/api/items", await rewritten.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal("bowline", rewritten.Headers.GetValues("x-served-by").Single());
    }

    [Fact]
    public async Task ActiveHealthCheck_WedgedEndpoint_LeavesRotationWithinItsThresholds()
    {
        // v1's health endpoint answers 503 (the app is wedged), v2's 200.
        await using var mesh = await StartAsync(2, ("reviews-hc.yaml", """
            apiVersion: bowline.dev/v1alpha1
            kind: HealthCheck
            metadata: {name: reviews, namespace: default}
            spec:
              host: reviews
              interval: 1s
              timeout: 1s
              unhealthyThreshold: 2
              healthyThreshold: 1
              http: {path: /status-if/v1/503}
            """));

        await mesh.WaitForClusterAsync(Cluster, c => c?.Hosts.Available.Length == 1, Timeouts.Long);
        using var http = mesh.Client.Client();
        var statuses = await StatusesAsync(http, "/status-if/v1/500", 50);

        Assert.Equal(50, statuses.GetValueOrDefault(200));
        Assert.True(mesh.Stat($"cluster.{Cluster}.health_check.failure") >= 2);
    }

    [Fact]
    public async Task LocalRateLimit_BucketOf10_Answers429WithFlagAndHeadersBeyondIt()
    {
        await using var mesh = await StartAsync(1, ("reviews-rl.yaml", """
            apiVersion: bowline.dev/v1alpha1
            kind: RateLimit
            metadata: {name: reviews, namespace: default}
            spec:
              host: reviews
              tokenBucket: {maxTokens: 10, tokensPerFill: 10, fillInterval: 60s}
            """));
        using var http = mesh.Client.Client();

        var responses = new List<HttpResponseMessage>();
        for (var i = 0; i < 30; i++)
        {
            responses.Add(await http.GetAsync(Host + "/r").Within(Timeouts.Short));
        }

        Assert.Equal(10, responses.Count(r => r.IsSuccessStatusCode));
        var limited = responses.Where(r => (int)r.StatusCode == 429).ToList();
        Assert.Equal(20, limited.Count);
        Assert.All(limited, r => Assert.Equal("RL", r.Headers.GetValues("x-bowline-response-flags").Single()));
        Assert.All(limited, r => Assert.Equal("0", r.Headers.GetValues("x-ratelimit-remaining").Single()));
        Assert.Equal(20, mesh.Stat("bowline.response_flags.RL"));
        responses.ForEach(r => r.Dispose());
    }
}
