using Bowline.Proxy.Clusters;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Stats;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.Proxy.Filters.Network.TcpProxy;

/// <summary>Envoy's <c>tcp.&lt;stat_prefix&gt;.*</c> counters of one tcp_proxy.</summary>
internal sealed class TcpProxyStats(ProxyStats stats, string prefix)
{
    public Stat ConnectionsTotal { get; } = stats.Get(StatTag.Tcp(prefix), "downstream_cx_total");
    public Stat ReceivedBytes { get; } = stats.Get(StatTag.Tcp(prefix), "downstream_cx_rx_bytes_total");
    public Stat SentBytes { get; } = stats.Get(StatTag.Tcp(prefix), "downstream_cx_tx_bytes_total");
    public Stat NoRoute { get; } = stats.Get(StatTag.Tcp(prefix), "downstream_cx_no_route");
    public Stat IdleTimeouts { get; } = stats.Get(StatTag.Tcp(prefix), "idle_timeout");
    public Stat MaxDurationReached { get; } = stats.Get(StatTag.Tcp(prefix), "max_downstream_connection_duration");
    public Stat ConnectAttemptsExceeded { get; } = stats.Get(StatTag.Tcp(prefix), "upstream_connect_attempts_exceeded");
}

/// <summary>
/// Envoy's <c>envoy.filters.network.tcp_proxy</c>, compiled once per update: the cluster (or weighted clusters) a
/// connection goes to, by their long-lived <see cref="ClusterState"/> handles, and the connection's limits. Fields it
/// does not implement are NACKed by name (tunneling, on-demand CDS, hash policies, metadata matches).
/// </summary>
internal sealed class TcpProxyConfig
{
    public const string TypeUrl = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";

    /// <summary>Envoy's default idle_timeout when the field is absent: one hour.</summary>
    private static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromHours(1);

    private readonly Routing.WeightedTarget[] _targets;
    private readonly Random _random;

    private TcpProxyConfig(string statPrefix, Routing.WeightedTarget[] targets, TimeSpan idleTimeout, int maxConnectAttempts, TimeSpan maxDuration, TcpProxyStats stats, Random random)
    {
        StatPrefix = statPrefix;
        _targets = targets;
        IdleTimeout = idleTimeout;
        MaxConnectAttempts = maxConnectAttempts;
        MaxDownstreamConnectionDuration = maxDuration;
        Stats = stats;
        _random = random;
    }

    public string StatPrefix { get; }

    /// <summary>No bytes either way for this long closes both sides; infinite when configured 0.</summary>
    public TimeSpan IdleTimeout { get; }

    /// <summary>Upstream connect attempts before the downstream connection is closed (Envoy's default 1).</summary>
    public int MaxConnectAttempts { get; }

    /// <summary>Infinite unless max_downstream_connection_duration is set.</summary>
    public TimeSpan MaxDownstreamConnectionDuration { get; }

    public TcpProxyStats Stats { get; }

    /// <summary>The access_log entries, each run when the connection ends (REQ, RESP and PROTOCOL are missing there).</summary>
    public Bowline.Proxy.AccessLogs.AccessLogger[] AccessLogs { get; private init; } = [];

    /// <summary>Istio's TCP metrics for the chain (its <c>istio.stats</c> network filter), or null.</summary>
    public Telemetry.IstioStatsConfig? IstioStats { get; private init; }

    /// <summary>The clock a connection's record is timed by.</summary>
    public TimeProvider Time { get; private init; } = TimeProvider.System;

    public IEnumerable<string> ClusterNames => _targets.Select(t => t.Cluster.Name);

    /// <summary>The cluster for one new connection, by weight.</summary>
    public ClusterState Pick() => Routing.WeightedTarget.Pick(_targets, _random).Cluster;

    public static TcpProxyConfig Compile(Any typed, ClusterManager clusters, Func<string, TcpProxyStats> statsFor, Random random, Bowline.Proxy.AccessLogs.AccessLogFiles accessLogs, TimeProvider time, string where,
        Telemetry.IstioStatsConfig? istioStats = null)
    {
        var config = typed.Unpack<Envoy.Extensions.Filters.Network.TcpProxy.V3.TcpProxy>();
        where += " tcp_proxy";
        XdsFields.Check(config, where, "stat_prefix", "cluster", "weighted_clusters", "idle_timeout", "max_connect_attempts", "max_downstream_connection_duration", "access_log");
        if (config.StatPrefix.Length == 0)
        {
            throw new ProxyConfigException($"{where}: stat_prefix is required");
        }
        Routing.WeightedTarget[] targets;
        switch (config.ClusterSpecifierCase)
        {
            case Envoy.Extensions.Filters.Network.TcpProxy.V3.TcpProxy.ClusterSpecifierOneofCase.Cluster when config.Cluster.Length > 0:
                targets = [new Routing.WeightedTarget(clusters.Handle(config.Cluster), 1)];
                break;
            case Envoy.Extensions.Filters.Network.TcpProxy.V3.TcpProxy.ClusterSpecifierOneofCase.WeightedClusters when config.WeightedClusters.Clusters.Count > 0:
                var list = new List<Routing.WeightedTarget>();
                long cumulative = 0;
                foreach (var weighted in config.WeightedClusters.Clusters)
                {
                    XdsFields.Check(weighted, where + " weighted_clusters", "name", "weight");
                    if (weighted.Name.Length == 0 || weighted.Weight == 0)
                    {
                        throw new ProxyConfigException($"{where}: every weighted cluster needs a name and a weight of at least 1");
                    }
                    cumulative += weighted.Weight;
                    list.Add(new Routing.WeightedTarget(clusters.Handle(weighted.Name), cumulative));
                }
                targets = [.. list];
                break;
            default:
                throw new ProxyConfigException($"{where}: cluster or weighted_clusters is required");
        }
        var idle = config.IdleTimeout?.ToTimeSpan() is { } t ? (t <= TimeSpan.Zero ? Timeout.InfiniteTimeSpan : t) : DefaultIdleTimeout;
        var duration = config.MaxDownstreamConnectionDuration?.ToTimeSpan() is { Ticks: > 0 } d ? d : Timeout.InfiniteTimeSpan;
        var attempts = (int)Math.Clamp(config.MaxConnectAttempts ?? 1, 1, 100);
        return new TcpProxyConfig(config.StatPrefix, targets, idle, attempts, duration, statsFor(config.StatPrefix), random)
        {
            AccessLogs = [.. config.AccessLog.Select(log => Bowline.Proxy.AccessLogs.AccessLogger.Compile(log, accessLogs, where))],
            Time = time,
            IstioStats = istioStats,
        };
    }
}
