using Bowline.EndToEnd.Tests.Infrastructure;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>Istio traffic management through real sidecars: subsets, weighted splits, header routing, live edits, control plane outages.</summary>
public sealed class TrafficManagementTests
{
    private static readonly Dictionary<string, string> ClientLabels = new() { ["app"] = "productpage" };
    private const string Cluster = "outbound|9080||reviews.default.svc.cluster.local";

    private sealed record Reviews(MeshHarness Mesh, Sidecar Client, TestBackend[] Backends) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Mesh.DisposeAsync();
            foreach (var backend in Backends)
            {
                await backend.DisposeAsync();
            }
        }
    }

    /// <summary>reviews v1, v2, v3 behind their sidecars, and a productpage sidecar to call them from.</summary>
    private static async Task<Reviews> StartReviewsAsync(params (string File, string Yaml)[] extra)
    {
        var backends = new[] { await TestBackend.StartAsync("v1"), await TestBackend.StartAsync("v2"), await TestBackend.StartAsync("v3") };
        var mesh = await MeshHarness.StartAsync([("reviews.yaml", MeshYaml.Service("reviews", 9080)), ("reviews-dr.yaml", MeshYaml.Subsets("reviews", "v1", "v2", "v3")), .. extra]);
        foreach (var backend in backends)
        {
            await mesh.StartSidecarAsync($"reviews-{backend.Name}", new Dictionary<string, string> { ["app"] = "reviews", ["version"] = backend.Name }, [("http", 9080, backend.Port)]);
        }
        var client = await mesh.StartSidecarAsync("productpage-v1", ClientLabels, [], $"outbound|9080|v1|reviews.default.svc.cluster.local", "outbound|9080|v2|reviews.default.svc.cluster.local", "outbound|9080|v3|reviews.default.svc.cluster.local");
        await client.Host.Snapshots.WaitUntilAsync(s => s.Clusters.TryGetValue(Cluster, out var c) && c.Current?.Hosts.Available.Length == 3, Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        return new Reviews(mesh, client, backends);
    }

    private static async Task<Dictionary<string, int>> CountAsync(HttpClient http, int requests, Func<HttpRequestMessage>? make = null)
    {
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < requests; i++)
        {
            using var request = make?.Invoke() ?? new HttpRequestMessage(HttpMethod.Get, "http://reviews:9080/reviews/0");
            using var response = await http.SendAsync(request).Within(Timeouts.Short);
            response.EnsureSuccessStatusCode();
            var backend = response.Headers.GetValues("x-backend").Single();
            counts[backend] = counts.GetValueOrDefault(backend) + 1;
        }
        return counts;
    }

    [Fact]
    public async Task NoVirtualService_SpreadsOverEveryVersion()
    {
        await using var reviews = await StartReviewsAsync();
        using var http = reviews.Client.Client();

        var counts = await CountAsync(http, 300);

        Assert.Equal(["v1", "v2", "v3"], counts.Keys.Order());
        Assert.All(counts.Values, c => Assert.InRange(c, 50, 150));
    }

    [Fact]
    public async Task WeightedSplit80_20_Over2000Requests_IsWithinThreePoints()
    {
        await using var reviews = await StartReviewsAsync(("reviews-vs.yaml", MeshYaml.Split("reviews", ("v1", 80), ("v3", 20))));
        using var http = reviews.Client.Client();

        var counts = await CountAsync(http, 2000);

        Assert.Equal(["v1", "v3"], counts.Keys.Order());
        Assert.InRange(counts["v1"] / 20.0, 77, 83);
    }

    [Fact]
    public async Task HeaderMatch_EndUserJason_GoesToV2_OthersToV1()
    {
        await using var reviews = await StartReviewsAsync(("reviews-vs.yaml", """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews, namespace: default}
            spec:
              hosts: [reviews]
              http:
              - match:
                - headers:
                    end-user: {exact: jason}
                route:
                - destination: {host: reviews, subset: v2}
              - route:
                - destination: {host: reviews, subset: v1}
            """));
        using var http = reviews.Client.Client();

        var jason = await CountAsync(http, 50, () => new HttpRequestMessage(HttpMethod.Get, "http://reviews:9080/r") { Headers = { { "end-user", "jason" } } });
        var others = await CountAsync(http, 50);

        Assert.Equal(50, jason.GetValueOrDefault("v2"));
        Assert.Equal(50, others.GetValueOrDefault("v1"));
    }

    [Fact]
    public async Task VirtualServiceEdit_WhileTrafficFlows_TakesEffectWithinASecond_AndNoRequestFails()
    {
        await using var reviews = await StartReviewsAsync(("reviews-vs.yaml", MeshYaml.Split("reviews", ("v1", 100))));
        using var http = reviews.Client.Client();
        using var stop = new CancellationTokenSource();
        var failures = 0;
        var seenV3 = new TaskCompletionSource<DateTimeOffset>(TaskCreationOptions.RunContinuationsAsynchronously);
        var traffic = Task.Run(async () =>
        {
            var sent = 0;
            while (!stop.IsCancellationRequested)
            {
                using var response = await http.GetAsync("http://reviews:9080/r");
                sent++;
                if (!response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref failures);
                }
                else if (response.Headers.GetValues("x-backend").Single() == "v3")
                {
                    seenV3.TrySetResult(DateTimeOffset.UtcNow);
                }
            }
            return sent;
        });

        var before = (await CountAsync(http, 20)).Keys.Single();
        var edited = DateTimeOffset.UtcNow;
        await File.WriteAllTextAsync(Path.Combine(reviews.Mesh.ConfigDir, "reviews-vs.yaml"), MeshYaml.Split("reviews", ("v3", 100)));
        var switched = await seenV3.Task.Within(Timeouts.Short);
        await stop.CancelAsync();
        var sent = await traffic.Within(Timeouts.Short);

        Assert.Equal("v1", before);
        Assert.True(switched - edited < TimeSpan.FromSeconds(1), $"took {(switched - edited).TotalMilliseconds} ms");
        Assert.Equal(0, failures);
        Assert.True(sent > 20);
    }

    [Fact]
    public async Task ControlPlaneDown30Seconds_TrafficKeepsFlowing_AndProxiesReconnect()
    {
        await using var reviews = await StartReviewsAsync(("reviews-vs.yaml", MeshYaml.Split("reviews", ("v2", 100))));
        using var http = reviews.Client.Client();
        var port = reviews.Mesh.XdsPort;

        await reviews.Mesh.StopControlPlaneAsync();
        var outage = Task.Delay(TimeSpan.FromSeconds(30));
        var requests = 0;
        while (!outage.IsCompleted)
        {
            var counts = await CountAsync(http, 10);
            Assert.Equal(10, counts.GetValueOrDefault("v2"));
            requests += 10;
        }
        await reviews.Mesh.StartControlPlaneAsync(port);
        await reviews.Mesh.WriteConfigAsync("reviews-vs.yaml", MeshYaml.Split("reviews", ("v3", 100)));
        await reviews.Client.Host.Snapshots.WaitUntilAsync(s => s.Accepted.Values.SelectMany(r => r.Values).Any(r => r.Resource.ToString()!.Contains("|v3|", StringComparison.Ordinal) && r.Name == "http_proxy"), Timeouts.Token(Timeouts.Long)).Within(Timeouts.Long);

        Assert.True(requests > 100);
        Assert.Equal(10, (await CountAsync(http, 10)).GetValueOrDefault("v3"));
    }
}
