using Bowline.Ca;
using Bowline.ControlPlane.Translation;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Bowline.ControlPlane.Xds;

/// <summary>
/// Per-identity authorization of an ADS stream on the TLS port (Istio's checkConnectionIdentity, made strict): every
/// namespace the node claims (its id's <c>name.namespace</c> and its <c>NAMESPACE</c> metadata, or the default one it
/// is served as) and its <c>SERVICE_ACCOUNT</c> must be those of the certificate's SPIFFE ID. Otherwise the stream is
/// refused with PERMISSION_DENIED naming both, so a node cannot ask for another workload's listeners or secrets.
/// </summary>
internal sealed partial class NodeAuthorization(WorkloadIdentity identity, string trustDomain, string peer)
{
    /// <summary>What the client certificate proves.</summary>
    public WorkloadIdentity Identity { get; } = identity;

    public string TrustDomain { get; } = trustDomain;

    public string Peer { get; } = peer;

    /// <summary>The node to serve: <paramref name="node"/>, with the certificate's service account when it named none.</summary>
    public ProxyNode Authorize(Envoy.Config.Core.V3.Node raw, ProxyNode node, ILogger logger)
    {
        var idNamespace = NamespaceInId(raw.Id);
        var serviceAccount = node.ServiceAccount ?? Identity.ServiceAccount;
        if (node.Namespace == Identity.Namespace && (idNamespace is null || idNamespace == Identity.Namespace) && serviceAccount == Identity.ServiceAccount)
        {
            return node.ServiceAccount is null ? node with { ServiceAccount = serviceAccount } : node;
        }
        var claimedNamespace = idNamespace is not null && idNamespace != node.Namespace ? $"{node.Namespace} (metadata) and {idNamespace} (node id)" : node.Namespace;
        var message = $"node {raw.Id} claims ns/{claimedNamespace}/sa/{serviceAccount} but its client certificate proves {Identity.SpiffeId(TrustDomain)}; "
            + $"a proxy is served only the config of the identity it proves: run it with namespace {Identity.Namespace}, service account {Identity.ServiceAccount} and a node id in that namespace, or with that workload's own certificate";
        ControlPlaneMetrics.XdsPermissionDenied.Add(1);
        LogDenied(logger, Peer, message);
        throw new RpcException(new Status(StatusCode.PermissionDenied, message));
    }

    /// <summary>Istio's id form <c>type~ip~name.namespace~domain</c>: the namespace of its third part, if it names one.</summary>
    internal static string? NamespaceInId(string id) =>
        id.Split('~') is [_, _, var name, ..] && name.IndexOf('.', StringComparison.Ordinal) is var dot and > 0 ? name[(dot + 1)..] : null;

    [LoggerMessage(Level = LogLevel.Warning, Message = "xds: refused an ADS stream from {Peer} (counted in bowline_xds_permission_denied_total): {Reason}")]
    private static partial void LogDenied(ILogger logger, string peer, string reason);
}
