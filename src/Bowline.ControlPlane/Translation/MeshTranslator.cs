using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Snapshots;

namespace Bowline.ControlPlane.Translation;

/// <summary>Translates the mesh (one config generation's service index) into the xDS snapshot of one proxy.</summary>
internal static class MeshTranslator
{
    public static XdsSnapshot Translate(ServiceIndex index, ProxyNode node)
    {
        var snapshot = new SnapshotBuilder();
        foreach (var conflict in index.Conflicts)
        {
            snapshot.Warn(conflict);
        }
        foreach (var warning in index.Config.PeerAuthentication.Warnings)
        {
            snapshot.Warn(warning);
        }
        HealthCheckBuilder.WarnUnresolved(index, snapshot);
        RateLimitBuilder.WarnUnresolved(index, node.Kind, snapshot);
        ClusterBuilder.AddOutbound(index, node, snapshot);
        switch (node.Kind)
        {
            case ProxyKind.Sidecar:
                ClusterBuilder.AddInbound(node, index, snapshot);
                ListenerBuilder.AddSidecarOutbound(node, index, snapshot);
                ListenerBuilder.AddSidecarOutboundTcp(node, index, snapshot);
                ListenerBuilder.AddSidecarInbound(node, index, snapshot);
                break;
            case ProxyKind.Gateway:
                ListenerBuilder.AddGateway(node, index, snapshot);
                break;
            case ProxyKind.ProxylessGrpc:
                ListenerBuilder.AddProxyless(node, index, snapshot);
                break;
        }
        SecretBuilder.AddReferenced(node, index, snapshot);
        return snapshot.Build();
    }
}
