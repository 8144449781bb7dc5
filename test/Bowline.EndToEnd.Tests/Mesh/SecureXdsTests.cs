using System.Net;
using Bowline.EndToEnd.Tests.Infrastructure;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>
/// The control plane's TLS port (Istio's 15012) end to end, as <c>bowline up</c> runs the mesh: sidecars get their
/// certificate from the CA over TLS with a bootstrap token, then run ADS over mutual TLS with it, and the control plane
/// serves a node only the config of the identity its certificate proves.
/// </summary>
public sealed class SecureXdsTests
{
    private const string Cluster = "outbound|9080||reviews.default.svc.cluster.local";

    [Fact]
    public async Task SecureXds_SidecarsOnTheTlsPort_ServeTheMeshEndToEnd()
    {
        await using var backend = await TestBackend.StartAsync("v1");
        await using var mesh = await MeshHarness.StartSecureXdsAsync(("reviews.yaml", MeshYaml.Service("reviews", 9080)));
        var server = await mesh.StartSidecarAsync("reviews-v1", new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v1" }, [("http", 9080, backend.Port)]);
        var client = await mesh.StartSidecarAsync("productpage-v1", new Dictionary<string, string> { ["app"] = "productpage" }, [], Cluster);
        using var http = client.Client();

        using var response = await http.GetAsync("http://reviews:9080/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // Config came over the TLS port, and the call between the sidecars was mesh mTLS.
        Assert.Equal(
            ["spiffe://cluster.local/ns/default/sa/productpage", "spiffe://cluster.local/ns/default/sa/reviews"],
            mesh.ControlPlane.Proxies.All.Select(p => p.VerifiedIdentity).Order(StringComparer.Ordinal));
        Assert.Equal(1, client.Host.Stats.ValueOf("control_plane.connected_state"));
        Assert.True(server.Host.Stats.ValueOf($"listener.127.0.0.1_{mesh.InboundPortOf("reviews-v1")}.ssl.handshake") >= 1);
    }

    [Fact]
    public async Task SecureXds_NodeIdInAnotherNamespaceThanItsCertificate_IsRefusedAndGetsNoConfig()
    {
        await using var mesh = await MeshHarness.StartSecureXdsAsync(("reviews.yaml", MeshYaml.Service("reviews", 9080)));
        const string Forged = "sidecar~127.0.0.1~reviews-v1.prod~prod.svc.cluster.local";

        var (forged, log) = await mesh.StartProxyWithNodeIdAsync("ratings-v1", "ratings", Forged);

        var refusal = await mesh.ControlPlaneLog.WaitForAsync(l => l.Contains("refused an ADS stream", StringComparison.Ordinal) && l.Contains(Forged, StringComparison.Ordinal)).Within(Timeouts.Short);
        Assert.Contains("spiffe://cluster.local/ns/default/sa/ratings", refusal, StringComparison.Ordinal);
        var seen = await log.WaitForAsync(l => l.Contains("refused this proxy", StringComparison.Ordinal)).Within(Timeouts.Short);
        Assert.Contains("PermissionDenied", seen, StringComparison.Ordinal);
        Assert.True(forged.Stats.ValueOf("control_plane.xds.refused") >= 1);
        // It did get its own certificate (the CA is reachable with the token), and no config at all.
        Assert.Empty(forged.Snapshots.Current.Listeners);
        Assert.Empty(mesh.ControlPlane.Proxies.All);
    }
}
