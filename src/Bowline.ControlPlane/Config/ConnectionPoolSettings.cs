namespace Bowline.ControlPlane.Config;

/// <summary>Istio's <c>ConnectionPoolSettings</c>; zero or absent numbers mean "no limit" (Istio cannot tell them apart).</summary>
internal sealed record ConnectionPoolSettings(TcpSettings? Tcp, HttpSettings? Http);

/// <summary>Istio's <c>ConnectionPoolSettings.TCPSettings</c>.</summary>
internal sealed record TcpSettings(int MaxConnections, TimeSpan? ConnectTimeout, TcpKeepalive? Keepalive, TimeSpan? MaxConnectionDuration, TimeSpan? IdleTimeout);

/// <summary>SO_KEEPALIVE settings; absent parts keep the OS defaults.</summary>
internal sealed record TcpKeepalive(uint Probes, TimeSpan? Time, TimeSpan? Interval);

/// <summary>Istio's <c>ConnectionPoolSettings.HTTPSettings</c>.</summary>
/// <param name="H2UpgradePolicy">DEFAULT, DO_NOT_UPGRADE or UPGRADE; null: DEFAULT (the mesh's policy, which is not to upgrade).</param>
internal sealed record HttpSettings(
    int Http1MaxPendingRequests,
    int Http2MaxRequests,
    int MaxRequestsPerConnection,
    int MaxRetries,
    TimeSpan? IdleTimeout,
    string? H2UpgradePolicy,
    int MaxConcurrentStreams);
