using System.Text.Json;
using Bowline.EndToEnd.Tests.Infrastructure;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>
/// An unmodified proxyless gRPC client (@grpc/grpc-js-xds from npm, in Node) resolves <c>xds:///</c> names through our
/// control plane and honours a weighted split: proof that we speak xDS, not a private dialect.
/// </summary>
public sealed class ProxylessInteropTests
{
    [Fact]
    public async Task GrpcJsXdsClient_ResolvesThroughControlPlane_AndHonoursWeightedSplit()
    {
        var interop = Path.Combine(RepoPaths.Root, "test", "interop");
        await EnsureNodeModulesAsync(interop);
        var v1Port = Ports.Free();
        var v2Port = Ports.Free();
        await using var v1 = await GrpcTests.StartEchoAsync("v1", v1Port);
        await using var v2 = await GrpcTests.StartEchoAsync("v2", v2Port);
        await using var mesh = await MeshHarness.StartAsync(
            ("echo.yaml", MeshYaml.Service("grpc-echo", 50051, "grpc")),
            ("echo-dr.yaml", MeshYaml.Subsets("grpc-echo", "v1", "v2")),
            ("echo-vs.yaml", MeshYaml.Split("grpc-echo", ("v1", 80), ("v2", 20))),
            ("echo-we.yaml", Entry("grpc-echo-v1", "v1", v1Port) + "\n---\n" + Entry("grpc-echo-v2", "v2", v2Port)));
        var bootstrap = Path.Combine(mesh.ConfigDir, "..", $"bootstrap-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(bootstrap, $$$"""
            {
              "xds_servers": [{"server_uri": "127.0.0.1:{{{mesh.XdsPort}}}", "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
              "node": {"id": "sidecar~127.0.0.1~interop-client.default~default.svc.cluster.local", "locality": {}, "metadata": {"GENERATOR": "grpc", "NAMESPACE": "default"}}
            }
            """);

        await using var node = ChildProcess.Start("node", [Path.Combine(interop, "xds-client.js"), "--target", "xds:///grpc-echo.default.svc.cluster.local:50051", "--count", "500", "--proto", Path.Combine(RepoPaths.Root, "samples", "grpc-echo", "protos", "echo.proto")],
            new Dictionary<string, string?> { ["GRPC_XDS_BOOTSTRAP"] = bootstrap }, interop);
        var exit = await node.WaitForExitAsync(TimeSpan.FromSeconds(90));
        File.Delete(bootstrap);

        Assert.True(exit == 0, node.Output);
        var summary = JsonDocument.Parse(node.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last(l => l.StartsWith('{'))).RootElement;
        Assert.True(summary.GetProperty("failed").GetInt32() == 0, node.Output);
        var v1Share = summary.GetProperty("versions").GetProperty("v1").GetInt32() / 5.0;
        Assert.InRange(v1Share, 72, 88);
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
