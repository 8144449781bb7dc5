using System.Net;
using Bowline.EndToEnd.Tests.Infrastructure;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>HTTP/1.1 and h2c through two sidecars: the client's outbound sidecar and the server's inbound sidecar.</summary>
public sealed class HttpProxyingTests
{
    private static readonly Dictionary<string, string> Client = new() { ["app"] = "client" };

    [Fact]
    public async Task Http11_ThroughTwoSidecars_ReachesTheAppWithHostAndRequestId()
    {
        await using var backend = await TestBackend.StartAsync("reviews-v1");
        await using var mesh = await MeshHarness.StartAsync(("reviews.yaml", MeshYaml.Service("reviews", 9080)));
        await mesh.StartSidecarAsync("reviews-v1", new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v1" }, [("http", 9080, backend.Port)]);
        var client = await mesh.StartSidecarAsync("client", Client, [], "outbound|9080||reviews.default.svc.cluster.local");

        using var http = client.Client();
        var body = await http.GetStringAsync("http://reviews:9080/reviews/0").Within(Timeouts.Short);

        Assert.Contains("backend=reviews-v1", body, StringComparison.Ordinal);
        Assert.Contains("protocol=HTTP/1.1", body, StringComparison.Ordinal);
        Assert.Contains("host=reviews:9080", body, StringComparison.Ordinal);
        Assert.Contains("path=/reviews/0", body, StringComparison.Ordinal);
        Assert.DoesNotContain("request-id= ", body + " ", StringComparison.Ordinal);
    }

    [Fact]
    public async Task H2c_ToAnHttpPort_ReachesAnHttp11App()
    {
        await using var backend = await TestBackend.StartAsync("reviews-v1");
        await using var mesh = await MeshHarness.StartAsync(("reviews.yaml", MeshYaml.Service("reviews", 9080)));
        await mesh.StartSidecarAsync("reviews-v1", new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v1" }, [("http", 9080, backend.Port)]);
        var client = await mesh.StartSidecarAsync("client", Client, [], "outbound|9080||reviews.default.svc.cluster.local");

        using var http = client.H2Client();
        using var response = await http.GetAsync("http://reviews:9080/x").Within(Timeouts.Short);
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Contains("protocol=HTTP/1.1", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task H2c_ToAnHttp2Port_StaysHttp2End2End()
    {
        await using var backend = await TestBackend.StartAsync("reviews-v1");
        await using var mesh = await MeshHarness.StartAsync(("reviews.yaml", MeshYaml.Service("reviews", 9080, "http2")));
        await mesh.StartSidecarAsync("reviews-v1", new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v1" }, [("http2", 9080, backend.Port)]);
        var client = await mesh.StartSidecarAsync("client", Client, [], "outbound|9080||reviews.default.svc.cluster.local");

        using var http = client.H2Client();
        using var response = await http.GetAsync("http://reviews.default.svc.cluster.local:9080/x").Within(Timeouts.Short);
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Contains("protocol=HTTP/2", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownHost_Returns404WithResponseFlagNR()
    {
        await using var mesh = await MeshHarness.StartAsync(("reviews.yaml", MeshYaml.Service("reviews", 9080)));
        var client = await mesh.StartSidecarAsync("client", Client, []);

        using var http = client.Client();
        using var response = await http.GetAsync("http://nosuchservice:9080/").Within(Timeouts.Short);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("NR", response.Headers.GetValues("x-bowline-response-flags").Single());
    }

    [Fact]
    public async Task Admin_ServesConfigDumpClustersAndStats_InEnvoyShapes()
    {
        await using var backend = await TestBackend.StartAsync("reviews-v1");
        await using var mesh = await MeshHarness.StartAsync(("reviews.yaml", MeshYaml.Service("reviews", 9080)));
        await mesh.StartSidecarAsync("reviews-v1", new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v1" }, [("http", 9080, backend.Port)]);
        var client = await mesh.StartSidecarAsync("client", Client, [], "outbound|9080||reviews.default.svc.cluster.local");
        using (var http = client.Client())
        {
            await http.GetStringAsync("http://reviews:9080/").Within(Timeouts.Short);
        }
        using var admin = new HttpClient { BaseAddress = client.Host.AdminAddress, Timeout = Timeouts.Short };

        var ready = await admin.GetAsync("/ready").Within(Timeouts.Short);
        var dump = System.Text.Json.JsonDocument.Parse(await admin.GetStringAsync("/config_dump").Within(Timeouts.Short));
        var clusters = await admin.GetStringAsync("/clusters").Within(Timeouts.Short);
        var stats = await admin.GetStringAsync("/stats").Within(Timeouts.Short);

        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        var types = dump.RootElement.GetProperty("configs").EnumerateArray().Select(c => c.GetProperty("@type").GetString()).ToList();
        Assert.Equal([
            "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
            "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
            "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
            "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump"], types);
        Assert.Contains("\"name\": \"http_proxy\"", dump.RootElement.ToString(), StringComparison.Ordinal);
        Assert.Contains($"outbound|9080||reviews.default.svc.cluster.local::127.0.0.1:{mesh.InboundPortOf("reviews-v1")}::health_flags::healthy", clusters, StringComparison.Ordinal);
        Assert.Contains("cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_2xx: 1", stats, StringComparison.Ordinal);
    }
}
