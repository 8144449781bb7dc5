using Bowline.Proxy.Clusters;

namespace Bowline.Proxy.Http;

/// <summary>
/// What happened to one request, as Envoy's stream info records it: written by the filters and the router as the
/// request runs (local replies, retries, failures), read afterwards by whatever reports on it (stats now; access logs,
/// metrics and traces later) — which therefore never recompute anything. Timestamps are <see cref="TimeProvider"/>
/// ticks (<see cref="TimeProvider.GetTimestamp"/>); zero means "did not happen".
/// </summary>
/// <remarks>Owned by one request; not thread-safe, and not to be kept after the request ends.</remarks>
internal sealed class RequestInfo
{
    public long StartTimestamp { get; set; }

    /// <summary>The wall-clock time the request arrived (Envoy's <c>%START_TIME%</c>), from the injected clock.</summary>
    public DateTimeOffset StartTime { get; set; }

    /// <summary>When the last attempt was sent upstream (the connection was obtained from the pool).</summary>
    public long UpstreamRequestTimestamp { get; set; }

    /// <summary>When the first byte of the upstream response (its headers) arrived.</summary>
    public long UpstreamFirstByteTimestamp { get; set; }

    public long EndTimestamp { get; set; }

    public ResponseFlags Flags { get; set; }

    /// <summary>Envoy's <c>%RESPONSE_CODE_DETAILS%</c>: <c>via_upstream</c>, <c>route_not_found</c>, <c>fault_filter_abort</c>, ...</summary>
    public string? ResponseCodeDetails { get; set; }

    public int ResponseCode { get; set; }

    public string? RouteName { get; set; }

    public string? UpstreamCluster { get; set; }

    /// <summary>The service the upstream cluster is for (its <c>istio</c> metadata), for Istio's destination_service labels.</summary>
    public Telemetry.ServiceLabels? UpstreamService { get; set; }

    public UpstreamEndpoint? UpstreamHost { get; set; }

    /// <summary>Upstream attempts made: 0 when the request never left the proxy, 1 + retries otherwise.</summary>
    public int Attempts { get; set; }

    /// <summary>Request body bytes read from the client.</summary>
    public long BytesReceived { get; set; }

    /// <summary>Response body bytes written to the client.</summary>
    public long BytesSent { get; set; }

    /// <summary>Why the last upstream attempt failed at the transport level (Envoy's <c>%UPSTREAM_TRANSPORT_FAILURE_REASON%</c>).</summary>
    public string? UpstreamTransportFailureReason { get; set; }

    /// <summary>The downstream workload, from metadata exchange, when its mTLS identity vouched for it (Istio's <c>downstream_peer</c>).</summary>
    public Telemetry.WorkloadMetadata? DownstreamPeer { get; set; }

    /// <summary>The upstream workload, from the metadata on its response, when its mTLS identity vouched for it.</summary>
    public Telemetry.WorkloadMetadata? UpstreamPeer { get; set; }

    /// <summary>gRPC messages in the request and the response bodies (counted only for gRPC requests).</summary>
    public Telemetry.GrpcMessageCounter RequestMessages;

    public Telemetry.GrpcMessageCounter ResponseMessages;

    /// <summary>A TCP connection's Istio series, resolved once its upstream is known; its bytes are added as they flow.</summary>
    public Telemetry.TcpSeries? IstioSeries { get; set; }

    public void Reset()
    {
        StartTimestamp = UpstreamRequestTimestamp = UpstreamFirstByteTimestamp = EndTimestamp = 0;
        StartTime = default;
        Flags = ResponseFlags.None;
        ResponseCodeDetails = RouteName = UpstreamCluster = UpstreamTransportFailureReason = null;
        UpstreamHost = null;
        UpstreamService = null;
        ResponseCode = Attempts = 0;
        BytesReceived = BytesSent = 0;
        DownstreamPeer = UpstreamPeer = null;
        IstioSeries = null;
        RequestMessages = ResponseMessages = default;
    }
}
