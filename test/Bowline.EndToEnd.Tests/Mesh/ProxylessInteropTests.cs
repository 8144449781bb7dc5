using System.Text.Json;
using Bowline.EndToEnd.Tests.Infrastructure;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>
/// An unmodified proxyless gRPC client (@grpc/grpc-js-xds from npm, in Node) resolves <c>xds:///</c> names through our
/// control plane and honours what proxyless gRPC supports of it: weighted clusters, header routes, fault injection
/// (gRFC A33), retries (A44), ring hash (A42) and circuit breaking's max requests (A32). Proof that we speak xDS, not a
/// private dialect. Outlier detection (A50) has no test here: Istio's outlierDetection configures only the
/// consecutive-error detectors gRPC does not implement, so (as Istio does) nothing is sent and there is nothing to
/// observe; see docs/xds-support.md.
/// </summary>
public sealed class ProxylessInteropTests
{
    private const string Target = "xds:///grpc-echo.default.svc.cluster.local:50051";

    private static string VirtualService(string http) => $$"""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: grpc-echo, namespace: default}
        spec:
          hosts: [grpc-echo]
          http:
        {{http}}
        """;

    [Fact]
    public async Task GrpcJsXdsClient_ResolvesThroughControlPlane_AndHonoursWeightedSplit()
    {
        var summary = await RunAsync(("echo-vs.yaml", MeshYaml.Split("grpc-echo", ("v1", 80), ("v2", 20))), 500);

        Assert.Equal(0, summary.GetProperty("failed").GetInt32());
        Assert.InRange(summary.GetProperty("versions").GetProperty("v1").GetInt32() / 5.0, 72, 88);
    }

    [Fact]
    public async Task GrpcJsXdsClient_HeaderRoute_SendsMatchingCallsToTheirSubset()
    {
        var vs = VirtualService("""
              - match: [{headers: {x-user: {exact: jason}}}]
                route: [{destination: {host: grpc-echo, subset: v2}}]
              - route: [{destination: {host: grpc-echo, subset: v1}}]
            """);

        var jason = await RunAsync(("echo-vs.yaml", vs), 50, ["--metadata", "x-user=jason"]);
        var others = await RunAsync(("echo-vs.yaml", vs), 50);

        Assert.Equal(50, jason.GetProperty("versions").GetProperty("v2").GetInt32());
        Assert.Equal(50, others.GetProperty("versions").GetProperty("v1").GetInt32());
    }

    [Fact]
    public async Task GrpcJsXdsClient_FaultAbort_FailsCallsWithTheInjectedGrpcStatus()
    {
        var summary = await RunAsync(("echo-vs.yaml", VirtualService("""
              - fault:
                  abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}
                route: [{destination: {host: grpc-echo, subset: v1}}]
            """)), 20);

        Assert.Equal(20, summary.GetProperty("failed").GetInt32());
        Assert.Equal(20, summary.GetProperty("codes").GetProperty("UNAVAILABLE").GetInt32());
    }

    [Fact]
    public async Task GrpcJsXdsClient_RetriesOnUnavailable_TurnsAFailingHostIntoSuccesses()
    {
        // Both versions behind one route; v1 fails every call with UNAVAILABLE. Round robin alternates, so a retry
        // lands on v2.
        var summary = await RunAsync(("echo-vs.yaml", VirtualService("""
              - route: [{destination: {host: grpc-echo}}]
                retries: {attempts: 3, retryOn: unavailable}
            """)), 40, ["--message", "unavailable-from:v1"]);

        Assert.Equal(0, summary.GetProperty("failed").GetInt32());
        Assert.Equal(40, summary.GetProperty("versions").GetProperty("v2").GetInt32());
    }

    [Fact]
    public async Task GrpcJsXdsClient_RingHashOnHeader_KeepsAKeyOnOneHost()
    {
        var dr = """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: grpc-echo, namespace: default}
            spec:
              host: grpc-echo
              trafficPolicy:
                loadBalancer:
                  consistentHash: {httpHeaderName: x-user}
              subsets:
              - {name: v1, labels: {version: v1}}
              - {name: v2, labels: {version: v2}}
            """;

        var summary = await RunAsync(("echo-dr.yaml", dr), 100, ["--metadata", "x-user=alice"]);

        Assert.Equal(0, summary.GetProperty("failed").GetInt32());
        Assert.Single(summary.GetProperty("hosts").EnumerateObject());
    }

    [Fact]
    public async Task GrpcJsXdsClient_MaxRequests_FailsCallsBeyondTheLimitWithUnavailable()
    {
        // Subset v1 allows two requests at once; v1-release reaches the same server through its own, unlimited cluster,
        // so the call that releases the held ones is not refused by the limit it is testing.
        var dr = """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: grpc-echo, namespace: default}
            spec:
              host: grpc-echo
              subsets:
              - name: v1
                labels: {version: v1}
                trafficPolicy: {connectionPool: {http: {http2MaxRequests: 2}}}
              - name: v1-release
                labels: {version: v1}
            """;
        var vs = VirtualService("""
              - match: [{headers: {x-release: {exact: "yes"}}}]
                route: [{destination: {host: grpc-echo, subset: v1-release}}]
              - route: [{destination: {host: grpc-echo, subset: v1}}]
            """);

        // Five "hold:" calls, each started once the one before is in flight or has failed; the server keeps them open
        // (headers sent, no response) until the release call, so no call ends while the others are being picked.
        var summary = await RunAsync([("echo-dr.yaml", dr), ("echo-vs.yaml", vs)], 5,
            ["--concurrency", "5", "--message", "hold:max-requests", "--release", "release:max-requests", "--release-metadata", "x-release=yes", "--deadline", "60"]);

        Assert.Equal(2, summary.GetProperty("ok").GetInt32());
        Assert.Equal(3, summary.GetProperty("failed").GetInt32());
        Assert.Equal(3, summary.GetProperty("codes").GetProperty("UNAVAILABLE").GetInt32());
        Assert.Equal(2, summary.GetProperty("peakInFlight").GetInt32());
        // The server's own count: exactly two calls were waiting on it when the release came.
        Assert.Equal("released:2", summary.GetProperty("release").GetProperty("message").GetString());
    }

    private static Task<JsonElement> RunAsync((string File, string Yaml) config, int calls, string[]? clientArgs = null) =>
        RunAsync([config], calls, clientArgs);

    /// <summary>
    /// Two echo servers (v1, v2) registered with the mesh, <paramref name="configs"/> added to (or replacing the default
    /// file of the same name in) its config; the Node client makes <paramref name="calls"/> calls through xDS and returns
    /// its summary.
    /// </summary>
    private static async Task<JsonElement> RunAsync((string File, string Yaml)[] configs, int calls, string[]? clientArgs = null)
    {
        var interop = Path.Combine(RepoPaths.Root, "test", "interop");
        await EnsureNodeModulesAsync(interop);
        var v1Port = Ports.Free();
        var v2Port = Ports.Free();
        await using var v1 = await GrpcTests.StartEchoAsync("v1", v1Port);
        await using var v2 = await GrpcTests.StartEchoAsync("v2", v2Port);
        (string, string)[] files =
        [
            ("echo.yaml", MeshYaml.Service("grpc-echo", 50051, "grpc")),
            ("echo-dr.yaml", MeshYaml.Subsets("grpc-echo", "v1", "v2")),
            ("echo-we.yaml", Entry("grpc-echo-v1", "v1", v1Port) + "\n---\n" + Entry("grpc-echo-v2", "v2", v2Port)),
        ];
        await using var mesh = await MeshHarness.StartAsync([.. files.Where(f => configs.All(c => c.File != f.Item1)), .. configs]);
        var bootstrap = Path.Combine(mesh.ConfigDir, "..", $"bootstrap-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(bootstrap, $$$"""
            {
              "xds_servers": [{"server_uri": "127.0.0.1:{{{mesh.XdsPort}}}", "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
              "node": {"id": "sidecar~127.0.0.1~interop-client.default~default.svc.cluster.local", "locality": {}, "metadata": {"GENERATOR": "grpc", "NAMESPACE": "default"}}
            }
            """);

        await using var node = ChildProcess.Start("node",
            [Path.Combine(interop, "xds-client.js"), "--target", Target, "--count", calls.ToString(System.Globalization.CultureInfo.InvariantCulture),
             "--proto", Path.Combine(RepoPaths.Root, "samples", "grpc-echo", "protos", "echo.proto"), .. clientArgs ?? []],
            new Dictionary<string, string?> { ["GRPC_XDS_BOOTSTRAP"] = bootstrap }, interop);
        var exit = await node.WaitForExitAsync(TimeSpan.FromSeconds(90));
        File.Delete(bootstrap);

        Assert.True(exit is 0 or 1, node.Output);
        return JsonDocument.Parse(node.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last(l => l.StartsWith('{'))).RootElement.Clone();
    }

    private static string Entry(string name, string version, int port) => $$"""
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: {{name}}, namespace: default}
        spec:
          address: 127.0.0.1
          labels: {app: grpc-echo, version: {{version}}}
          ports: {grpc: {{port}}}
        """;

    /// <summary>`npm ci` from the committed lockfile when the folder has no node_modules yet (CI runs it up front).</summary>
    private static async Task EnsureNodeModulesAsync(string interop)
    {
        if (Directory.Exists(Path.Combine(interop, "node_modules", "@grpc", "grpc-js-xds")))
        {
            return;
        }
        await using var npm = ChildProcess.Start("npm", ["ci", "--no-audit", "--no-fund"], workingDirectory: interop);
        Assert.True(await npm.WaitForExitAsync(TimeSpan.FromMinutes(3)) == 0, npm.Output);
    }
}
