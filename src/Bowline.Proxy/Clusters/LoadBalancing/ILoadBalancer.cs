namespace Bowline.Proxy.Clusters.LoadBalancing;

/// <summary>Picks one host per attempt. Implementations must be thread-safe and must not allocate per pick.</summary>
internal interface ILoadBalancer
{
    /// <summary>Envoy's name for the policy, for <c>/clusters</c> and logs.</summary>
    string Name { get; }

    /// <summary>For consistent-hash policies, which structure the host set must precompute; null otherwise.</summary>
    HashRingKind? RingKind => null;

    /// <summary>
    /// Returns null when <paramref name="hosts"/> has no available host. <paramref name="hash"/> is the request's
    /// hash-policy value (consistent-hash policies only); <paramref name="attempt"/> is 0 for the first try and counts
    /// up on host re-selection, so a policy can move away from a host it already chose. <paramref name="excludedLevels"/>
    /// (a bit per priority level) are levels a retry should avoid (Envoy's previous_priorities).
    /// </summary>
    UpstreamEndpoint? Pick(HostSet hosts, ulong? hash, int attempt, ulong excludedLevels = 0);
}

/// <summary>The policies Bowline implements, by Envoy's <c>lb_policy</c> names.</summary>
internal static class LoadBalancers
{
    /// <summary>Cycles through hosts; even spread when requests cost the same.</summary>
    public const string RoundRobin = "ROUND_ROBIN";

    /// <summary>Envoy's and Istio's default: of two random hosts, the one with fewer active requests (power of two choices); adapts to slow hosts.</summary>
    public const string LeastRequest = "LEAST_REQUEST";

    /// <summary>Uniformly random; no shared state at all.</summary>
    public const string Random = "RANDOM";

    /// <summary>Consistent hashing on a ring (Karger et al.): adding a host moves about 1/N of the keys.</summary>
    public const string RingHash = "RING_HASH";

    /// <summary>Consistent hashing with Google's Maglev lookup table: faster picks, slightly more disruption than a ring.</summary>
    public const string Maglev = "MAGLEV";

    public static ILoadBalancer Create(Envoy.Config.Cluster.V3.Cluster cluster, System.Random random) => cluster.LbPolicy switch
    {
        Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.RoundRobin => new RoundRobinBalancer(),
        Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.Random => new RandomBalancer(random),
        Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.LeastRequest => new LeastRequestBalancer(random),
        Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.RingHash => new HashRingBalancer(RingHashSettings(cluster), random),
        Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.Maglev => new HashRingBalancer(MaglevSettings(cluster), random),
        _ => throw new Configuration.ProxyConfigException($"cluster {cluster.Name}: lb_policy {cluster.LbPolicy} is not supported; use ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH or MAGLEV"),
    };

    private static HashRingKind RingHashSettings(Envoy.Config.Cluster.V3.Cluster cluster)
    {
        var config = cluster.RingHashLbConfig;
        if (config is not null)
        {
            Configuration.XdsFields.Check(config, $"cluster {cluster.Name} ring_hash_lb_config", "minimum_ring_size", "maximum_ring_size", "hash_function");
            if (config.HashFunction != Envoy.Config.Cluster.V3.Cluster.Types.RingHashLbConfig.Types.HashFunction.XxHash)
            {
                throw new Configuration.ProxyConfigException($"cluster {cluster.Name}: ring_hash_lb_config.hash_function {config.HashFunction} is not supported; use XX_HASH");
            }
        }
        var min = (int)Math.Min(config?.MinimumRingSize ?? 1024, 8_388_608);
        var max = (int)Math.Min(config?.MaximumRingSize ?? 8_388_608, 8_388_608);
        if (min > max)
        {
            throw new Configuration.ProxyConfigException($"cluster {cluster.Name}: ring_hash_lb_config.minimum_ring_size {min} exceeds maximum_ring_size {max}");
        }
        return new HashRingKind(IsMaglev: false, min, max);
    }

    private static HashRingKind MaglevSettings(Envoy.Config.Cluster.V3.Cluster cluster)
    {
        var config = cluster.MaglevLbConfig;
        if (config is not null)
        {
            Configuration.XdsFields.Check(config, $"cluster {cluster.Name} maglev_lb_config", "table_size");
        }
        var size = (int)(config?.TableSize ?? 65537);
        if (!HashRing.IsPrime(size) || size > 5_000_011)
        {
            throw new Configuration.ProxyConfigException($"cluster {cluster.Name}: maglev_lb_config.table_size {size} must be a prime no larger than 5000011");
        }
        return new HashRingKind(IsMaglev: true, size, size);
    }
}
