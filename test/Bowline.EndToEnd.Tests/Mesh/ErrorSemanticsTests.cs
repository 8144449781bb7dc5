using System.Net;
using Bowline.EndToEnd.Tests.Infrastructure;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>Envoy's error semantics: the status and the response flag a user greps for.</summary>
public sealed class ErrorSemanticsTests
{
    private static readonly Dictionary<string, string> ClientLabels = new() { ["app"] = "client" };

    private static async Task AssertFlagAsync(HttpResponseMessage response, HttpStatusCode status, string flag)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {status}, got {response.StatusCode}: {body}");
        Assert.Equal(flag, response.Headers.GetValues("x-bowline-response-flags").Single());
    }

    [Fact]
    public async Task ServiceWithoutEndpoints_Returns503UH()
    {
        await using var mesh = await MeshHarness.StartAsync(("reviews.yaml", MeshYaml.Service("reviews", 9080)));
        var client = await mesh.StartSidecarAsync("client", ClientLabels, []);
        using var http = client.Client();

        using var response = await http.GetAsync("http://reviews:9080/").Within(Timeouts.Short);

        await AssertFlagAsync(response, HttpStatusCode.ServiceUnavailable, "UH");
    }

    [Fact]
    public async Task EndpointRefusingConnections_Returns503UF()
    {
        var closedPort = Ports.Free();
        await using var mesh = await MeshHarness.StartAsync(("reviews.yaml", MeshYaml.Service("reviews", 9080)), ("reviews-we.yaml", $$"""
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: reviews-dead, namespace: default}
            spec:
              address: 127.0.0.1
              labels: {app: reviews}
              ports: {http: {{closedPort}}}
            """));
        var client = await mesh.StartSidecarAsync("client", ClientLabels, [], "outbound|9080||reviews.default.svc.cluster.local");
        using var http = client.Client();

        using var response = await http.GetAsync("http://reviews:9080/").Within(Timeouts.Short);

        await AssertFlagAsync(response, HttpStatusCode.ServiceUnavailable, "UF");
    }

    [Fact]
    public async Task SlowUpstreamPastRouteTimeout_Returns504UT()
    {
        await using var backend = await TestBackend.StartAsync("slow");
        await using var mesh = await MeshHarness.StartAsync(("reviews.yaml", MeshYaml.Service("reviews", 9080)), ("reviews-vs.yaml", """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews, namespace: default}
            spec:
              hosts: [reviews]
              http:
              - timeout: 0.5s
                route:
                - destination: {host: reviews}
            """));
        await mesh.StartSidecarAsync("reviews-v1", new Dictionary<string, string> { ["app"] = "reviews" }, [("http", 9080, backend.Port)]);
        var client = await mesh.StartSidecarAsync("client", ClientLabels, [], "outbound|9080||reviews.default.svc.cluster.local");
        using var http = client.Client();

        var started = DateTimeOffset.UtcNow;
        using var response = await http.GetAsync("http://reviews:9080/slow/5000").Within(Timeouts.Short);
        var elapsed = DateTimeOffset.UtcNow - started;

        await AssertFlagAsync(response, HttpStatusCode.GatewayTimeout, "UT");
        Assert.InRange(elapsed.TotalSeconds, 0.4, 3);
    }

    [Fact]
    public async Task UpstreamResetBeforeHeaders_Returns503UR()
    {
        await using var backend = await TestBackend.StartAsync("resetting");
        await using var mesh = await MeshHarness.StartAsync(("reviews.yaml", MeshYaml.Service("reviews", 9080)));
        await mesh.StartSidecarAsync("reviews-v1", new Dictionary<string, string> { ["app"] = "reviews" }, [("http", 9080, backend.Port)]);
        var client = await mesh.StartSidecarAsync("client", ClientLabels, [], "outbound|9080||reviews.default.svc.cluster.local");
        using var http = client.Client();

        using var response = await http.GetAsync("http://reviews:9080/reset").Within(Timeouts.Short);

        await AssertFlagAsync(response, HttpStatusCode.ServiceUnavailable, "UR");
    }
}
