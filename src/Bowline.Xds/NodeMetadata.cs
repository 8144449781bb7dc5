namespace Bowline.Xds;

/// <summary>
/// The keys of <c>node.metadata</c> both ends agree on: Istio's names where Istio has one, <c>BOWLINE_*</c> for
/// explicit (no iptables) mode, where the proxy tells the control plane which ports it was given.
/// </summary>
public static class NodeMetadata
{
    public const string Name = "NAME";
    public const string Namespace = "NAMESPACE";
    public const string Labels = "LABELS";
    public const string ServiceAccount = "SERVICE_ACCOUNT";
    public const string InterceptionMode = "INTERCEPTION_MODE";

    /// <summary>Istio's cluster id (<c>Kubernetes</c> unless the operator names one): span tags and the peer metadata.</summary>
    public const string ClusterId = "CLUSTER_ID";

    /// <summary>Istio marks proxyless gRPC clients with <c>GENERATOR: grpc</c>.</summary>
    public const string Generator = "GENERATOR";

    public const string BindAddress = "BOWLINE_BIND_ADDRESS";
    public const string OutboundPort = "BOWLINE_OUTBOUND_PORT";

    /// <summary>A struct of container port to <c>"listen port:app port"</c>.</summary>
    public const string InboundPorts = "BOWLINE_INBOUND_PORTS";

    /// <summary>
    /// A struct of <c>"host:port"</c> (a TCP service port) to the local port the app dials for it: explicit mode's
    /// outbound TCP, as Istio's Sidecar egress listeners with a <c>bind</c> and <c>port</c> give it without capture.
    /// </summary>
    public const string OutboundTcpPorts = "BOWLINE_OUTBOUND_TCP_PORTS";

    /// <summary>A struct of Gateway server port to the local port bound for it.</summary>
    public const string GatewayPorts = "BOWLINE_GATEWAY_PORTS";
}
