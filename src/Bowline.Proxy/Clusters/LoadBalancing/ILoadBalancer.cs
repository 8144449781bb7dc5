namespace Bowline.Proxy.Clusters.LoadBalancing;

/// <summary>Picks one healthy endpoint per request. Implementations must be thread-safe and must not allocate per pick.</summary>
internal interface ILoadBalancer
{
    /// <summary>Envoy's name for the policy, for <c>/clusters</c> and logs.</summary>
    string Name { get; }

    /// <summary>Returns null when <paramref name="healthy"/> is empty.</summary>
    UpstreamEndpoint? Pick(UpstreamEndpoint[] healthy);
}

/// <summary>The policies Bowline implements, by Envoy's <c>lb_policy</c> names.</summary>
internal static class LoadBalancers
{
    /// <summary>Cycles through endpoints; even spread when requests cost the same.</summary>
    public const string RoundRobin = "ROUND_ROBIN";

    /// <summary>Envoy's and Istio's default: of two random endpoints, the one with fewer active requests (power of two choices); adapts to slow endpoints.</summary>
    public const string LeastRequest = "LEAST_REQUEST";

    /// <summary>Uniformly random; no shared state at all.</summary>
    public const string Random = "RANDOM";

    public static ILoadBalancer Create(Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy policy, System.Random random, string cluster) => policy switch
    {
        Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.RoundRobin => new RoundRobinBalancer(),
        Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.Random => new RandomBalancer(random),
        Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.LeastRequest => new LeastRequestBalancer(random),
        _ => throw new Configuration.ProxyConfigException($"cluster {cluster}: lb_policy {policy} is not supported; use ROUND_ROBIN, LEAST_REQUEST or RANDOM"),
    };
}
