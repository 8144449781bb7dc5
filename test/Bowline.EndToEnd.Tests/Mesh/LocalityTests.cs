using Bowline.EndToEnd.Tests.Infrastructure;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>
/// Locality-aware load balancing through real sidecars: a client in us-east/a, reviews backends in us-east/a and
/// us-west/b. Istio's localityLbSetting (distribute, failover) and retryRemoteLocalities become EDS priorities and
/// locality weights, and the client sidecar spreads, fails over and retries as Envoy would with the same xDS.
/// </summary>
public sealed class LocalityTests
{
    private const string Host = "http://reviews:9080";
    private const string Cluster = "outbound|9080||reviews.default.svc.cluster.local";
    private const string East = "us-east/a";
    private const string West = "us-west/b";

    private sealed record Mesh(MeshHarness Harness, Sidecar Client, TestBackend EastBackend, TestBackend WestBackend) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Harness.DisposeAsync();
            await EastBackend.DisposeAsync();
            await WestBackend.DisposeAsync();
        }
    }

    private static async Task<Mesh> StartAsync(params (string File, string Yaml)[] config)
    {
        var east = await TestBackend.StartAsync("east");
        var west = await TestBackend.StartAsync("west");
        var harness = await MeshHarness.StartAsync([("reviews.yaml", MeshYaml.Service("reviews", 9080)), .. config]);
        await harness.StartSidecarAsync("reviews-east", new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v1" }, [("http", 9080, east.Port)], random: null, locality: East);
        await harness.StartSidecarAsync("reviews-west", new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v1" }, [("http", 9080, west.Port)], random: null, locality: West);
        var client = await harness.StartSidecarAsync("productpage-v1", new Dictionary<string, string> { ["app"] = "productpage" }, [], new SeededRandom(42), East, Cluster);
        await client.Host.Snapshots.Current.Clusters[Cluster].WaitUntilAsync(c => c?.Hosts.All.Count == 2, Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        return new Mesh(harness, client, east, west);
    }

    private static string DestinationRule(string trafficPolicy) => $$"""
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: reviews, namespace: default}
        spec:
          host: reviews
          trafficPolicy:
        {{trafficPolicy}}
        """;

    private static async Task<(int East, int West, int Failed)> SendAsync(HttpClient http, string path, int requests)
    {
        var (east, west, failed) = (0, 0, 0);
        for (var i = 0; i < requests; i++)
        {
            using var response = await http.GetAsync(Host + path);
            var backend = response.Headers.TryGetValues("x-backend", out var values) ? values.First() : null;
            if (!response.IsSuccessStatusCode)
            {
                failed++;
            }
            else if (backend == "east")
            {
                east++;
            }
            else if (backend == "west")
            {
                west++;
            }
        }
        return (east, west, failed);
    }

    [Fact]
    public async Task Distribute_EightyTwenty_SplitsTrafficByLocalityWeight()
    {
        await using var mesh = await StartAsync(("reviews-dr.yaml", DestinationRule("""
                loadBalancer:
                  localityLbSetting:
                    enabled: true
                    distribute:
                    - from: us-east/a/*
                      to: {"us-east/a/*": 80, "us-west/b/*": 20}
            """)));
        await mesh.Client.Host.Snapshots.Current.Clusters[Cluster].WaitUntilAsync(c => c?.Config.HostPolicy.LocalityWeighted == true, Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        using var http = mesh.Client.Client();

        var (east, west, failed) = await SendAsync(http, "/", 2_000);

        // The locality schedule is deterministic: 80 of every 100 picks go east. Allow Istio's ±3 points.
        Assert.Equal(0, failed);
        Assert.InRange(east, 1_540, 1_660);
        Assert.Equal(2_000 - east, west);
    }

    [Fact]
    public async Task Failover_LocalLocalityEjected_TrafficMovesToTheRemoteOne()
    {
        await using var mesh = await StartAsync(("reviews-dr.yaml", DestinationRule("""
                loadBalancer:
                  localityLbSetting:
                    enabled: true
                    failover:
                    - from: us-east
                      to: us-west
                outlierDetection:
                  consecutive5xxErrors: 1
                  interval: 1s
                  baseEjectionTime: 5m
                  maxEjectionPercent: 100
            """)));
        using var http = mesh.Client.Client();

        // Before: everything stays in the client's own locality.
        var before = await SendAsync(http, "/", 50);
        Assert.Equal((50, 0, 0), before);

        // The east backend starts failing; one 503 ejects it, and its whole priority goes.
        using (await http.GetAsync(Host + "/status-if/east/503"))
        {
        }
        await mesh.Client.Host.Snapshots.Current.Clusters[Cluster].WaitUntilAsync(c => c?.Hosts.HealthyCount == 1, Timeouts.Token(Timeouts.Long)).Within(Timeouts.Long);

        var after = await SendAsync(http, "/status-if/east/503", 50);
        Assert.Equal((0, 50, 0), after);
    }

    [Theory]
    [InlineData(true, 20)]
    [InlineData(false, 0)]
    public async Task RetryRemoteLocalities_FailingLocalLocality_ThirdAttemptGoesRemote(bool remote, int expectedSuccesses)
    {
        // A failover rule makes us-west priority 1; outlier detection is set (Istio needs it for failover) but never ejects.
        await using var mesh = await StartAsync(
            ("reviews-dr.yaml", DestinationRule("""
                    loadBalancer:
                      localityLbSetting:
                        enabled: true
                        failover:
                        - from: us-east
                          to: us-west
                    outlierDetection:
                      consecutive5xxErrors: 1000
                      interval: 1h
                """)),
            ("reviews-vs.yaml", $$"""
                apiVersion: networking.istio.io/v1
                kind: VirtualService
                metadata: {name: reviews, namespace: default}
                spec:
                  hosts: [reviews]
                  http:
                  - route:
                    - destination: {host: reviews}
                    retries: {attempts: 2, retryOn: 5xx, retryRemoteLocalities: {{(remote ? "true" : "false")}}}
                """));
        await mesh.Client.Host.Snapshots.WaitUntilAsync(
            s => s.RouteTables.Values.Any(t => t.FindVirtualHost("reviews:9080")?.Routes.Any(r => r.Action?.Retry?.NumRetries == 2) == true),
            Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        using var http = mesh.Client.Client();

        // Envoy's previous_priorities with Istio's update_frequency 2: the first retry stays local, the second leaves.
        var (_, west, failed) = await SendAsync(http, "/status-if/east/503", 20);

        Assert.Equal(expectedSuccesses, west);
        Assert.Equal(20 - expectedSuccesses, failed);
    }
}
