using Bowline.Proxy.Stats;

namespace Bowline.Proxy.Clusters;

/// <summary>Per-cluster counters and gauges in Envoy's names (<c>cluster.&lt;name&gt;.upstream_rq_total</c>), resolved once per cluster.</summary>
internal sealed class ClusterStats(ProxyStats stats, StatTag tag)
{
    public ClusterStats(ProxyStats stats, string cluster)
        : this(stats, StatTag.Cluster(cluster))
    {
    }

    public Stat RequestsTotal { get; } = stats.Get(tag, "upstream_rq_total");
    public Stat Requests2xx { get; } = stats.Get(tag, "upstream_rq_2xx");
    public Stat Requests3xx { get; } = stats.Get(tag, "upstream_rq_3xx");
    public Stat Requests4xx { get; } = stats.Get(tag, "upstream_rq_4xx");
    public Stat Requests5xx { get; } = stats.Get(tag, "upstream_rq_5xx");
    public Stat RequestsActive { get; } = stats.Get(tag, "upstream_rq_active");
    public Stat Timeouts { get; } = stats.Get(tag, "upstream_rq_timeout");
    public Stat PerTryTimeouts { get; } = stats.Get(tag, "upstream_rq_per_try_timeout");
    public Stat ConnectionsTotal { get; } = stats.Get(tag, "upstream_cx_total");
    public Stat ConnectionOverflow { get; } = stats.Get(tag, "upstream_cx_overflow");
    public Stat ConnectFailures { get; } = stats.Get(tag, "upstream_cx_connect_fail");
    public Stat Resets { get; } = stats.Get(tag, "upstream_rq_rx_reset");
    public Stat NoHealthyUpstream { get; } = stats.Get(tag, "upstream_cx_none_healthy");
    public Stat PendingOverflow { get; } = stats.Get(tag, "upstream_rq_pending_overflow");
    public Stat Retries { get; } = stats.Get(tag, "upstream_rq_retry");
    public Stat RetrySuccesses { get; } = stats.Get(tag, "upstream_rq_retry_success");
    public Stat RetryOverflow { get; } = stats.Get(tag, "upstream_rq_retry_overflow");
    public Stat RetryLimitExceeded { get; } = stats.Get(tag, "upstream_rq_retry_limit_exceeded");
    public Stat RetryBackoffExponential { get; } = stats.Get(tag, "upstream_rq_retry_backoff_exponential");
    public Stat MembershipHealthy { get; } = stats.Get(tag, "membership_healthy");
    public Stat MembershipTotal { get; } = stats.Get(tag, "membership_total");
    public Stat LbHealthyPanic { get; } = stats.Get(tag, "lb_healthy_panic");
    public Stat EjectionsActive { get; } = stats.Get(tag, "outlier_detection.ejections_active");
    public Stat EjectionsTotal { get; } = stats.Get(tag, "outlier_detection.ejections_enforced_total");
    public Stat EjectionsConsecutive5xx { get; } = stats.Get(tag, "outlier_detection.ejections_enforced_consecutive_5xx");
    public Stat EjectionsGateway { get; } = stats.Get(tag, "outlier_detection.ejections_enforced_consecutive_gateway_failure");
    public Stat EjectionsLocalOrigin { get; } = stats.Get(tag, "outlier_detection.ejections_enforced_consecutive_local_origin_failure");
    public Stat EjectionsOverflow { get; } = stats.Get(tag, "outlier_detection.ejections_overflow");

    private long _lastLogged = long.MinValue;

    public void CountResponse(int status) => (status switch
    {
        >= 500 => Requests5xx,
        >= 400 => Requests4xx,
        >= 300 => Requests3xx,
        _ => Requests2xx,
    }).Increment();

    /// <summary>True at most once per 5 s (per stats object): the log rate limit for this cluster's failures.</summary>
    public bool ShouldLog(long timestamp, long frequency)
    {
        var last = Interlocked.Read(ref _lastLogged);
        return (last == long.MinValue || timestamp - last >= 5 * frequency) && Interlocked.CompareExchange(ref _lastLogged, timestamp, last) == last;
    }
}
