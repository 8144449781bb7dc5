using System.Net;
using System.Text.Json;
using Bowline.EndToEnd.Tests.Infrastructure;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>
/// Two of Istio's traffic-management tasks replayed with Istio's own YAML through our sidecars, checked against the
/// outcomes Istio publishes: Circuit Breaking (istio.io/latest/docs/tasks/traffic-management/circuit-breaking) and
/// Mirroring (.../traffic-management/mirroring). httpbin is a <see cref="TestBackend"/> per version behind its sidecar,
/// fortio and curl are an HttpClient behind a client sidecar. Where the task relies on load and luck (fortio's
/// <c>-c 3</c> trips the breaker because calls happen to overlap), the test holds calls at httpbin instead, so every
/// count is exact.
/// </summary>
public sealed class IstioTaskTests
{
    private const string Httpbin = "http://httpbin:8000";
    private const string Cluster = "outbound|8000||httpbin.default.svc.cluster.local";
    private const string V1Cluster = "outbound|8000|v1|httpbin.default.svc.cluster.local";
    private const string V2Cluster = "outbound|8000|v2|httpbin.default.svc.cluster.local";

    /// <summary>The Service of Istio's samples/httpbin/httpbin.yaml, which both tasks deploy.</summary>
    private const string HttpbinService = """
        apiVersion: v1
        kind: Service
        metadata:
          name: httpbin
          labels:
            app: httpbin
        spec:
          ports:
          - name: http
            port: 8000
            targetPort: 80
          selector:
            app: httpbin
        """;

    /// <summary>The Circuit Breaking task's DestinationRule, as the task applies it.</summary>
    private const string CircuitBreakerRule = """
        apiVersion: networking.istio.io/v1alpha3
        kind: DestinationRule
        metadata:
          name: httpbin
        spec:
          host: httpbin
          trafficPolicy:
            connectionPool:
              tcp:
                maxConnections: 1
              http:
                http1MaxPendingRequests: 1
                maxRequestsPerConnection: 1
            outlierDetection:
              consecutive5xxErrors: 1
              interval: 1s
              baseEjectionTime: 3m
              maxEjectionPercent: 100
        """;

    /// <summary>The Mirroring task's "default routing policy": the first of the two documents it applies.</summary>
    private const string DefaultRoute = """
        apiVersion: networking.istio.io/v1alpha3
        kind: VirtualService
        metadata:
          name: httpbin
        spec:
          hosts:
            - httpbin
          http:
          - route:
            - destination:
                host: httpbin
                subset: v1
              weight: 100
        """;

    /// <summary>The second document of the Mirroring task's first step: the v1 and v2 subsets.</summary>
    private const string Subsets = """
        apiVersion: networking.istio.io/v1alpha3
        kind: DestinationRule
        metadata:
          name: httpbin
        spec:
          host: httpbin
          subsets:
          - name: v1
            labels:
              version: v1
          - name: v2
            labels:
              version: v2
        """;

    /// <summary>The Mirroring task's second step: all traffic to v1, and a copy of all of it to v2.</summary>
    private const string MirrorRoute = """
        apiVersion: networking.istio.io/v1alpha3
        kind: VirtualService
        metadata:
          name: httpbin
        spec:
          hosts:
            - httpbin
          http:
          - route:
            - destination:
                host: httpbin
                subset: v1
              weight: 100
            mirror:
              host: httpbin
              subset: v2
            mirrorPercentage:
              value: 100.0
        """;

    private sealed record Mesh(MeshHarness Harness, Sidecar Client, IReadOnlyList<TestBackend> Httpbin) : IAsyncDisposable
    {
        public long Stat(string name) => Client.Host.Stats.ValueOf(name);

        public async ValueTask DisposeAsync()
        {
            await Harness.DisposeAsync();
            foreach (var backend in Httpbin)
            {
                await backend.DisposeAsync();
            }
        }
    }

    /// <summary>httpbin (one backend per version, labelled as the task's Deployments are) and a client sidecar.</summary>
    private static async Task<Mesh> StartAsync(string client, string[] versions, string waitForCluster, params (string File, string Yaml)[] config)
    {
        var backends = new List<TestBackend>();
        foreach (var version in versions)
        {
            backends.Add(await TestBackend.StartAsync(version));
        }
        var harness = await MeshHarness.StartAsync([("httpbin.yaml", HttpbinService), .. config]);
        foreach (var backend in backends)
        {
            await harness.StartSidecarAsync($"httpbin-{backend.Name}", new Dictionary<string, string> { ["app"] = "httpbin", ["version"] = backend.Name }, [("http", 80, backend.Port)]);
        }
        var sidecar = await harness.StartSidecarAsync(client, new Dictionary<string, string> { ["app"] = client }, [], new SeededRandom(42), waitForCluster);
        return new Mesh(harness, sidecar, backends);
    }

    /// <summary>What the control plane said about the config files: Istio's YAML should need no diagnostic at all.</summary>
    private static async Task<List<string>> DiagnosticsAsync(MeshHarness harness)
    {
        using var http = new HttpClient { Timeout = Timeouts.Short };
        using var config = JsonDocument.Parse(await http.GetStringAsync(new Uri(harness.ControlPlane.MonitoringAddress, "/debug/config")).Within(Timeouts.Short));
        return [.. config.RootElement.GetProperty("diagnostics").EnumerateArray().Select(d => d.GetProperty("text").GetString()!)];
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : null;

    /// <summary>Sequential calls, one at a time, as <c>fortio load -c 1</c> or repeated <c>curl</c> make them.</summary>
    private static async Task<List<(HttpStatusCode Status, string? Backend)>> CallOneAtATimeAsync(HttpClient http, string path, int calls)
    {
        var results = new List<(HttpStatusCode, string?)>();
        for (var i = 0; i < calls; i++)
        {
            using var response = await http.GetAsync(Httpbin + path).Within(Timeouts.Short);
            results.Add((response.StatusCode, Header(response, "x-backend")));
        }
        return results;
    }

    [Fact]
    public async Task CircuitBreaking_OneCallAtATime_EveryCallSucceeds()
    {
        await using var mesh = await StartAsync("fortio", ["v1"], Cluster, ("httpbin-dr.yaml", CircuitBreakerRule));
        using var fortio = mesh.Client.Client();

        // The task's `fortio curl http://httpbin:8000/get`, then the same load one connection at a time.
        var curl = await CallOneAtATimeAsync(fortio, "/get", 1);
        var load = await CallOneAtATimeAsync(fortio, "/get", 20);

        Assert.Empty(await DiagnosticsAsync(mesh.Harness));
        Assert.Equal((HttpStatusCode.OK, "v1"), Assert.Single(curl));
        Assert.All(load, r => Assert.Equal((HttpStatusCode.OK, "v1"), r));
        Assert.Equal(0, mesh.Stat($"cluster.{Cluster}.upstream_rq_pending_overflow"));
        Assert.Equal(21, mesh.Httpbin[0].Received.Count(r => r.Path == "/get"));
    }

    [Theory]
    [InlineData(3)] // the task's `fortio load -c 3`
    [InlineData(30)] // the task's 30 calls, all at once
    public async Task CircuitBreaking_MoreConcurrentCallsThanOneConnectionAndOnePending_SurplusIs503UO_CountedAsPendingOverflow(int concurrent)
    {
        await using var mesh = await StartAsync("fortio", ["v1"], Cluster, ("httpbin-dr.yaml", CircuitBreakerRule));
        var httpbin = mesh.Httpbin[0];
        // The client's own timeout outlasts the wait below, so a wait that runs out reports what the sidecar admitted
        // instead of a bare HttpClient timeout.
        using var fortio = mesh.Client.Client(Timeouts.Long * 2);
        var overflowStat = $"cluster.{Cluster}.upstream_rq_pending_overflow";
        // The breaker under test must be the one the client sidecar runs before the calls start.
        var limits = mesh.Client.Host.Snapshots.Current.Clusters[Cluster].Current?.Config.Limits;
        Assert.True(limits is { MaxConnections: 1, MaxPendingRequests: 1 }, $"the client sidecar's breaker for {Cluster} is {limits}, not the DestinationRule's");

        // httpbin holds every call it gets until the gate opens: the breaker admits one call on its one connection and
        // one pending behind it, and nothing it admitted can finish, so the surplus is exactly concurrent - 2.
        var calls = Enumerable.Range(0, concurrent).Select(_ => fortio.GetAsync(Httpbin + "/gate")).ToList();
        var surplus = concurrent - 2;
        try
        {
            // The unanswered set is read once per turn: counting the answered calls and then collecting the others
            // separately let a reply land in between and drop out of both, leaving WhenAny on the held calls only.
            for (var pending = calls; concurrent - pending.Count < surplus; pending = [.. calls.Where(c => !c.IsCompleted)])
            {
                await Task.WhenAny(pending).Within(Timeouts.Long);
            }
        }
        catch (TimeoutException)
        {
            var state = mesh.Client.Host.Snapshots.Current.Clusters[Cluster];
            var admitted = $"{state.Current?.Hosts.Available.Single().ActiveRequests} on the host, {state.ActiveRequests} on the cluster";
            var message = $"{calls.Count(c => c.IsCompleted)} of {concurrent} calls were answered while httpbin held the admitted ones, not {surplus}: "
                + $"the client sidecar admitted {admitted} (1 connection + 1 pending allowed), {overflowStat} = {mesh.Stat(overflowStat)}, "
                + $"httpbin received {httpbin.Received.Count(r => r.Path == "/gate")}";
            httpbin.OpenGate();
            Assert.Fail(message);
        }
        // The call on the connection reaches httpbin in its own time (the 503s can all be back before it arrives).
        await httpbin.WaitUntilReceivedAsync(received => received.Any(r => r.Path == "/gate"), Timeouts.Long);
        var answeredWhileHeld = await Task.WhenAll(calls.Where(c => c.IsCompleted)).Within(Timeouts.Short);
        var atHttpbinWhileHeld = httpbin.Received.Count(r => r.Path == "/gate");
        httpbin.OpenGate();
        var responses = await Task.WhenAll(calls).Within(Timeouts.Long);

        Assert.Empty(await DiagnosticsAsync(mesh.Harness));
        Assert.Equal(surplus, answeredWhileHeld.Length);
        Assert.All(answeredWhileHeld, r =>
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
            Assert.Equal("UO", Header(r, "x-bowline-response-flags"));
        });
        // maxConnections: 1 — the pending call waited in the client sidecar, not on a second connection to httpbin.
        Assert.Equal(1, atHttpbinWhileHeld);
        Assert.Equal(2, responses.Count(r => r.StatusCode == HttpStatusCode.OK && Header(r, "x-backend") == "v1"));
        Assert.Equal(surplus, responses.Count(r => r.StatusCode == HttpStatusCode.ServiceUnavailable));
        // The counter the task reads with `pilot-agent request GET stats | grep pending`: one per 503.
        Assert.Equal(surplus, mesh.Stat(overflowStat));
        Assert.Equal(2, httpbin.Received.Count(r => r.Path == "/gate"));
        Assert.Equal(1, httpbin.MaxConcurrentAtGate);
        // An overflow is the client's own limit, not httpbin failing: consecutive5xxErrors: 1 ejected nobody (Envoy's rule).
        Assert.Equal(0, mesh.Stat($"cluster.{Cluster}.outlier_detection.ejections_enforced_total"));
        Assert.Equal(1, mesh.Client.Host.Snapshots.Current.Clusters[Cluster].Current?.Hosts.Available.Length);
        foreach (var response in responses)
        {
            response.Dispose();
        }
    }

    [Fact]
    public async Task Mirroring_DefaultRouteThenMirrorToV2_V1AnswersEveryCall_V2GetsACopyOfEachWithShadowAuthority()
    {
        await using var mesh = await StartAsync("sleep", ["v1", "v2"], V1Cluster, ("httpbin-vs.yaml", DefaultRoute), ("httpbin-dr.yaml", Subsets));
        var (v1, v2) = (mesh.Httpbin[0], mesh.Httpbin[1]);
        using var curl = mesh.Client.Client();

        // Step 1, "Creating a default routing policy": all traffic to v1.
        var unmirrored = await CallOneAtATimeAsync(curl, "/headers?step=default", 10);

        // Step 2, "Mirroring traffic to v2": the task re-applies the VirtualService; the DestinationRule stays.
        await mesh.Harness.WriteConfigAsync("httpbin-vs.yaml", MirrorRoute);
        await mesh.Client.Host.Snapshots.WaitUntilAsync(s => s.RouteTables.Values.Any(t => t.ClusterNames.Contains(V2Cluster)), Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        await mesh.Client.Host.Snapshots.Current.Clusters[V2Cluster].WaitUntilAsync(c => c?.Hosts.Available.Length == 1, Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        var mirrored = await CallOneAtATimeAsync(curl, "/headers?step=mirror", 10);
        await v2.WaitUntilReceivedAsync(received => received.Count(r => r.Path == "/headers?step=mirror") == 10, Timeouts.Short);

        Assert.Empty(await DiagnosticsAsync(mesh.Harness));
        Assert.All(unmirrored.Concat(mirrored), r => Assert.Equal((HttpStatusCode.OK, "v1"), r));
        Assert.Equal(10, v1.Received.Count(r => r == ("httpbin:8000", "/headers?step=default")));
        Assert.Equal(10, v1.Received.Count(r => r == ("httpbin:8000", "/headers?step=mirror")));
        // "You should see access log entries for v1 and none for v2", then v2 sees the mirrored calls, each with the
        // authority Envoy gives a shadow: -shadow appended to the host, before the port.
        Assert.DoesNotContain(v2.Received, r => r.Path == "/headers?step=default");
        Assert.Equal(10, v2.Received.Count(r => r == ("httpbin-shadow:8000", "/headers?step=mirror")));
        Assert.Equal(10, v2.Received.Count);
        Assert.Equal(10, mesh.Stat($"cluster.{V2Cluster}.upstream_rq_total"));
    }
}
