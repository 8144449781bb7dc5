namespace Bowline.Proxy.Clusters;

/// <summary>
/// One upstream host of a cluster. Its identity (address, port) is immutable; everything else is live state that
/// survives config updates (the compiler reuses the instance by cluster, address and port): active requests for
/// least-request, the outlier detector's counters and ejection, the active health checker's verdict.
/// </summary>
/// <remarks>Thread-safe: request threads update the counters with atomics; health changes go through <see cref="ClusterState"/>.</remarks>
internal sealed class UpstreamEndpoint(string address, int port)
{
    private int _activeRequests;
    private int _consecutive5xx;
    private int _consecutiveGatewayFailures;
    private int _consecutiveLocalOriginFailures;

    public string Address { get; } = address;

    public int Port { get; } = port;

    /// <summary>The forwarding prefix, built once: <c>http://127.0.0.1:41000</c>.</summary>
    public string Prefix { get; } = $"http://{(address.Contains(':', StringComparison.Ordinal) ? $"[{address}]" : address)}:{port}";

    public int ActiveRequests => Volatile.Read(ref _activeRequests);

    /// <summary>Counts a request in flight to this host; returns the host's active requests including it.</summary>
    public int RequestStarted() => Interlocked.Increment(ref _activeRequests);

    public void RequestEnded() => Interlocked.Decrement(ref _activeRequests);

    /// <summary>
    /// When (a <see cref="TimeProvider"/> timestamp) the host joined the cluster or last came back from failing its
    /// health checks: slow start ramps its weight up from here.
    /// </summary>
    public long JoinedAt { get; set; }

    /// <summary>Set by the outlier detector while the host is ejected; read when host sets are built.</summary>
    public bool Ejected { get; set; }

    /// <summary>How often the host has been ejected; multiplies the ejection time. Decays while the host behaves.</summary>
    public int EjectionCount { get; set; }

    /// <summary>When (a <see cref="TimeProvider"/> timestamp) the current ejection ends.</summary>
    public long EjectedUntil { get; set; }

    /// <summary>Set by the active health checker while the host fails its checks (Envoy's <c>/failed_active_hc</c>).</summary>
    public bool FailedActiveHealthCheck { get; set; }

    /// <summary>
    /// Records one upstream outcome for the outlier detector and returns the consecutive counts after it. With
    /// <paramref name="splitLocalOrigin"/> (Envoy's split_external_local_origin_errors) connect failures, resets and
    /// timeouts count apart from the upstream's own answers; without it they count as the 503 Envoy maps them to.
    /// </summary>
    public (int FiveXx, int Gateway, int LocalOrigin) Record(UpstreamOutcome outcome, bool splitLocalOrigin)
    {
        switch (outcome)
        {
            case UpstreamOutcome.LocalOriginFailure when splitLocalOrigin:
                return (Volatile.Read(ref _consecutive5xx), Volatile.Read(ref _consecutiveGatewayFailures), Interlocked.Increment(ref _consecutiveLocalOriginFailures));
            case UpstreamOutcome.Success:
                ResetOutlierCounters();
                return (0, 0, 0);
        }
        // Any answer from the upstream is a local-origin success.
        if (splitLocalOrigin)
        {
            Volatile.Write(ref _consecutiveLocalOriginFailures, 0);
        }
        var fiveXx = Interlocked.Increment(ref _consecutive5xx);
        var gateway = 0;
        if (outcome == UpstreamOutcome.ServerError)
        {
            Volatile.Write(ref _consecutiveGatewayFailures, 0);
        }
        else
        {
            gateway = Interlocked.Increment(ref _consecutiveGatewayFailures);
        }
        return (fiveXx, gateway, Volatile.Read(ref _consecutiveLocalOriginFailures));
    }

    /// <summary>Clears the consecutive counters, after an ejection.</summary>
    public void ResetOutlierCounters()
    {
        Volatile.Write(ref _consecutive5xx, 0);
        Volatile.Write(ref _consecutiveGatewayFailures, 0);
        Volatile.Write(ref _consecutiveLocalOriginFailures, 0);
    }

    /// <summary>
    /// The SPIFFE identity this endpoint's server proved on its last mesh mTLS handshake (null until one): the identity
    /// that must vouch for the workload metadata it sends back. An endpoint address is one workload, so it is kept here.
    /// </summary>
    public Tls.SpiffeId? PeerIdentity
    {
        get => Volatile.Read(ref _peerIdentity);
        set => Volatile.Write(ref _peerIdentity, value);
    }

    private Tls.SpiffeId? _peerIdentity;

    /// <summary>
    /// The workload the control plane says this endpoint is (its EDS <c>istio.workload</c> metadata), for the client's
    /// metrics where no metadata was exchanged; null when it named none. Set with the endpoint's assignment, as its weight is.
    /// </summary>
    public Telemetry.WorkloadMetadata? Workload
    {
        get => Volatile.Read(ref _workload);
        set => Volatile.Write(ref _workload, value);
    }

    private Telemetry.WorkloadMetadata? _workload;

    public override string ToString() => $"{Address}:{Port}";
}

/// <summary>What one upstream attempt came to, as the outlier detector classifies it.</summary>
internal enum UpstreamOutcome
{
    /// <summary>A response below 500.</summary>
    Success,

    /// <summary>A 500, 501, 505 or other 5xx that is not a gateway error.</summary>
    ServerError,

    /// <summary>502, 503 or 504 from the upstream.</summary>
    GatewayError,

    /// <summary>A connect failure, a reset or a timeout: the failure happened before the upstream answered.</summary>
    LocalOriginFailure,

}

/// <summary>
/// An endpoint as a cluster's current assignment has it: the shared live endpoint, its weight, its EDS health, its
/// locality's priority, and the locality (region/zone/subzone) with the locality's load_balancing_weight, which only
/// locality-weighted clusters read.
/// </summary>
/// <remarks><see cref="Tls"/> is the endpoint's transport socket under the cluster's config (null: plaintext).</remarks>
internal sealed record WeightedEndpoint(UpstreamEndpoint Endpoint, int Weight, bool Healthy, int Priority = 0, string Locality = "", int LocalityWeight = 1, Tls.UpstreamTls? Tls = null);
