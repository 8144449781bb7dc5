using Bowline.Proxy.Clusters.LoadBalancing;
using Bowline.Proxy.Stats;

namespace Bowline.Proxy.Clusters;

/// <summary>Which HTTP version a cluster speaks upstream (Envoy's <c>HttpProtocolOptions</c>).</summary>
internal enum UpstreamProtocol
{
    Http1,
    Http2,

    /// <summary>Whatever the client spoke (Istio's choice for plain HTTP ports).</summary>
    Downstream,
}

/// <summary>Per-cluster counters, Envoy names, resolved once per cluster.</summary>
internal sealed class ClusterStats(ProxyStats stats, string cluster)
{
    public Stat RequestsTotal { get; } = stats.Get($"cluster.{cluster}.upstream_rq_total");
    public Stat Requests2xx { get; } = stats.Get($"cluster.{cluster}.upstream_rq_2xx");
    public Stat Requests4xx { get; } = stats.Get($"cluster.{cluster}.upstream_rq_4xx");
    public Stat Requests5xx { get; } = stats.Get($"cluster.{cluster}.upstream_rq_5xx");
    public Stat RequestsActive { get; } = stats.Get($"cluster.{cluster}.upstream_rq_active");
    public Stat Timeouts { get; } = stats.Get($"cluster.{cluster}.upstream_rq_timeout");
    public Stat ConnectFailures { get; } = stats.Get($"cluster.{cluster}.upstream_cx_connect_fail");
    public Stat Resets { get; } = stats.Get($"cluster.{cluster}.upstream_rq_rx_reset");
    public Stat NoHealthyUpstream { get; } = stats.Get($"cluster.{cluster}.upstream_cx_none_healthy");
    public Stat MembershipHealthy { get; } = stats.Get($"cluster.{cluster}.membership_healthy");
    public Stat MembershipTotal { get; } = stats.Get($"cluster.{cluster}.membership_total");

    private long _lastLogged = long.MinValue;

    /// <summary>True at most once per 5 s (per stats object): the log rate limit for this cluster's failures.</summary>
    public bool ShouldLog(long timestamp, long frequency)
    {
        var last = Interlocked.Read(ref _lastLogged);
        return (last == long.MinValue || timestamp - last >= 5 * frequency) && Interlocked.CompareExchange(ref _lastLogged, timestamp, last) == last;
    }
}

/// <summary>
/// A compiled cluster: its endpoints as of this config version, its balancer, and the connection pool it forwards
/// through. The pool (an <see cref="HttpMessageInvoker"/>) and the balancer's state are shared with earlier versions of
/// the same cluster so that a config push neither drops connections nor resets round-robin.
/// </summary>
internal sealed class UpstreamCluster(
    string name,
    UpstreamProtocol protocol,
    ILoadBalancer balancer,
    IReadOnlyList<WeightedEndpoint> endpoints,
    HttpMessageInvoker invoker,
    ClusterStats stats)
{
    public string Name { get; } = name;

    public UpstreamProtocol Protocol { get; } = protocol;

    public ILoadBalancer Balancer { get; } = balancer;

    public IReadOnlyList<WeightedEndpoint> Endpoints { get; } = endpoints;

    /// <summary>Healthy endpoints expanded by weight, so the balancers stay weight-unaware and allocation-free.</summary>
    public UpstreamEndpoint[] Healthy { get; } = ExpandByWeight(endpoints);

    public HttpMessageInvoker Invoker { get; } = invoker;

    public ClusterStats Stats { get; } = stats;

    public UpstreamEndpoint? PickEndpoint() => Balancer.Pick(Healthy);

    private static UpstreamEndpoint[] ExpandByWeight(IReadOnlyList<WeightedEndpoint> endpoints)
    {
        var healthy = endpoints.Where(e => e.Healthy).ToList();
        if (healthy.Count == 0)
        {
            return [];
        }
        // Weights are usually all 1; reduce by their GCD so the expansion stays small.
        var gcd = healthy.Select(e => Math.Max(1, e.Weight)).Aggregate(Gcd);
        return [.. healthy.SelectMany(e => Enumerable.Repeat(e.Endpoint, Math.Min(100, Math.Max(1, e.Weight) / gcd)))];
    }

    private static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);
}
