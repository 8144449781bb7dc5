using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Tests.Translation;
using Bowline.Xds;
using Envoy.Config.Listener.V3;

namespace Bowline.ControlPlane.Tests.Xds;

/// <summary>ControlPlaneOptions.MeshMtls reaches translation through the config loop, and off is the default.</summary>
public sealed class MeshMtlsOptionTests
{
    private static (string, string)[] Files =>
    [
        ("services.yaml", File.ReadAllText(TestFiles.Bookinfo("services.yaml"))),
        ("workload-entries.yaml", Bookinfo.SidecarWorkloadEntries),
        ("strict.yaml", "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: default}\nspec: {mtls: {mode: STRICT}}\n"),
    ];

    [Theory]
    [InlineData(false, "")]
    [InlineData(true, "tls")]
    public async Task StreamAggregatedResources_MeshMtlsOption_DecidesTheInboundChains(bool meshMtls, string transport)
    {
        await using var cp = await ControlPlaneFixture.StartAsync(meshMtls, Files);
        using var ads = cp.Connect();

        Assert.Equal((meshMtls, "cluster.local"), (cp.Host.Mesh.Current.Config.Security.MeshMtls, cp.Host.Mesh.Current.Config.Security.TrustDomain));
        await ads.SubscribeAsync(TypeUrls.Listener, TestNodes.ProductpageSidecar());
        var listeners = await ads.ReceiveAsync();

        var inbound = listeners.Resources.Select(r => r.Unpack<Listener>()).Single(l => l.Name == "virtualInbound");
        Assert.Equal(transport, Assert.Single(inbound.FilterChains).FilterChainMatch.TransportProtocol);
        Assert.Equal(!meshMtls, cp.Host.Mesh.Warnings.Any(w => w.Contains("STRICT is NOT enforced", StringComparison.Ordinal)));
    }
}
