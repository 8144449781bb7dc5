using System.Net;
using Bowline.EndToEnd.Tests.Infrastructure;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>
/// <c>bowline wait</c> and <c>bowline proxy-status</c> as an operator runs them (the real CLI, as a process) against a
/// control plane serving real sidecars: wait returns only once every affected proxy has ACKed the change, so the change
/// is in force the moment it returns; a file the control plane rejects is reported with its error; proxy-status shows
/// every proxy SYNCED.
/// </summary>
public sealed class ProxyStatusTests
{
    private const string Host = "http://reviews:9080";
    private const string Cluster = "outbound|9080||reviews.default.svc.cluster.local";

    [Fact]
    public async Task Wait_ReturnsOnceEveryAffectedProxyAcked_ThenTheChangeIsInForce_AndProxyStatusShowsThemSynced()
    {
        await using var backend = await TestBackend.StartAsync("v1");
        await using var mesh = await MeshHarness.StartAsync(("reviews.yaml", MeshYaml.Service("reviews", 9080)));
        await mesh.StartSidecarAsync("reviews-v1", new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v1" }, [("http", 9080, backend.Port)]);
        var productpage = await mesh.StartSidecarAsync("productpage-v1", new Dictionary<string, string> { ["app"] = "productpage", ["version"] = "v1" }, [], Cluster);
        var details = await mesh.StartSidecarAsync("details-v1", new Dictionary<string, string> { ["app"] = "details", ["version"] = "v1" }, [], Cluster);
        var controlPlane = mesh.ControlPlane.MonitoringAddress.ToString();

        // Written straight into the directory, as an operator's kubectl apply or cp would: nothing waits for it but the CLI.
        var file = Path.Combine(mesh.ConfigDir, "reviews-fault.yaml");
        await File.WriteAllTextAsync(file, """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews, namespace: default}
            spec:
              hosts: [reviews]
              http:
              - match: [{uri: {prefix: /broken}}]
                fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
                route: [{destination: {host: reviews}}]
              - route: [{destination: {host: reviews}}]
            """);
        await using (var wait = ChildProcess.Dotnet("bowline.dll", ["wait", file, "--control-plane", controlPlane, "--timeout", "60s"]))
        {
            var code = await wait.WaitForExitAsync(Timeouts.Long);
            Assert.True(code == 0, $"bowline wait exited {code}:\n{wait.Output}");
            // Every sidecar has outbound routes for reviews, so the change reaches all three.
            Assert.Contains("applied to 3 of 3 proxies", wait.Output, StringComparison.Ordinal);
        }

        // In force on every client the moment wait returned: no polling here.
        foreach (var client in new[] { productpage, details })
        {
            using var http = client.Client();
            using var response = await http.GetAsync(Host + "/broken").Within(Timeouts.Short);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        }

        await using (var status = ChildProcess.Dotnet("bowline.dll", ["proxy-status", "--control-plane", controlPlane]))
        {
            var code = await status.WaitForExitAsync(Timeouts.Long);
            Assert.True(code == 0, $"bowline proxy-status exited {code}:\n{status.Output}");
            var rows = status.Output.Split('\n').Where(l => l.StartsWith("sidecar~", StringComparison.Ordinal)).ToList();
            Assert.Equal(3, rows.Count);
            Assert.All(rows, r => Assert.Equal(4, r.Split("SYNCED").Length - 1));
        }

        // A file the control plane rejects: wait says so with the file, line and field, and fails.
        var bad = Path.Combine(mesh.ConfigDir, "ratings-bad.yaml");
        await File.WriteAllTextAsync(bad, """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: ratings, namespace: default}
            spec:
              hosts: [ratings]
              http:
              - retries: {attempts: -1}
                route: [{destination: {host: ratings}}]
            """);
        await using (var rejected = ChildProcess.Dotnet("bowline.dll", ["wait", bad, "--control-plane", controlPlane, "--timeout", "60s"]))
        {
            var code = await rejected.WaitForExitAsync(Timeouts.Long);
            Assert.True(code == 1, $"bowline wait exited {code}:\n{rejected.Output}");
            Assert.Contains("rejected by the control plane", rejected.Output, StringComparison.Ordinal);
            Assert.Contains("retries.attempts", rejected.Output, StringComparison.Ordinal);
        }
    }
}
