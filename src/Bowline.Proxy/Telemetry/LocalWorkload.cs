namespace Bowline.Proxy.Telemetry;

/// <summary>
/// This proxy's own side of Istio's metrics and metadata exchange, computed once from its bootstrap: its metadata,
/// the header values it sends peers, and its SPIFFE principal (the identity its workload certificate carries).
/// </summary>
internal sealed class LocalWorkload(ProxyOptions options)
{
    public WorkloadMetadata Metadata { get; } = WorkloadMetadata.Local(options);

    /// <summary>The <c>x-envoy-peer-metadata</c> value sent to peers.</summary>
    public string Header { get; } = WorkloadMetadata.Local(options).Encode();

    /// <summary>The <c>x-envoy-peer-metadata-id</c> value: the node id, as Istio sends it.</summary>
    public string HeaderId { get; } = options.NodeId;

    /// <summary>The principal label: the SPIFFE URI of the workload certificate, or <c>unknown</c> without one.</summary>
    public string Principal { get; } = options.CaToken is null ? "unknown" : $"spiffe://{options.TrustDomain}/ns/{options.Namespace}/sa/{options.ServiceAccount}";

    /// <summary>A gateway reports as the source of the requests it forwards, as Istio's gateways do.</summary>
    public bool Gateway { get; } = options.Gateway;
}
