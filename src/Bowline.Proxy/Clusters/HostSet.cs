using Bowline.Proxy.Clusters.LoadBalancing;

namespace Bowline.Proxy.Clusters;

/// <summary>
/// A cluster's hosts as of one EDS assignment and one health state: every host, and the ones requests may go to,
/// expanded by weight so the balancers stay weight-unaware and allocation-free. Immutable; rebuilt when the assignment
/// changes or a host's health does (an ejection, a failed health check), never per request.
/// </summary>
internal sealed class HostSet
{
    public static readonly HostSet Empty = new(null, [], 50, needsRing: null);

    public HostSet(Envoy.Config.Endpoint.V3.ClusterLoadAssignment? source, IReadOnlyList<WeightedEndpoint> all, int panicThresholdPercent, HashRingKind? needsRing)
    {
        Source = source;
        All = all;
        // Envoy's priorities: the lowest priority with a host that can take traffic serves (locality failover).
        var byPriority = all.GroupBy(e => e.Priority).OrderBy(g => g.Key).ToList();
        var chosen = byPriority.FirstOrDefault(g => g.Any(IsAvailable))?.ToList() ?? byPriority.FirstOrDefault()?.ToList() ?? [];
        var available = chosen.Where(IsAvailable).ToList();
        HealthyCount = all.Count(IsAvailable);
        // Envoy's panic mode: when too few hosts are available, balancing over all of them beats overloading the few.
        Panic = chosen.Count > 0 && available.Count * 100 < panicThresholdPercent * chosen.Count;
        var serving = Panic ? chosen : available;
        Available = ExpandByWeight(serving);
        Ring = needsRing is { } kind && serving.Count > 0 ? HashRing.Build(kind, serving) : null;
    }

    /// <summary>The assignment this was built from (null for STATIC clusters, whose hosts are in the Cluster).</summary>
    public Envoy.Config.Endpoint.V3.ClusterLoadAssignment? Source { get; }

    public IReadOnlyList<WeightedEndpoint> All { get; }

    /// <summary>Hosts requests may be sent to, each repeated by its (GCD-reduced) weight.</summary>
    public UpstreamEndpoint[] Available { get; }

    /// <summary>For ring-hash and Maglev clusters: the hosts laid out on the ring or lookup table.</summary>
    public HashRing? Ring { get; }

    public int HealthyCount { get; }

    /// <summary>True when fewer hosts than the panic threshold are available, so all hosts of the priority serve.</summary>
    public bool Panic { get; }

    private static bool IsAvailable(WeightedEndpoint e) => e.Healthy && !e.Endpoint.Ejected && !e.Endpoint.FailedActiveHealthCheck;

    private static UpstreamEndpoint[] ExpandByWeight(List<WeightedEndpoint> hosts)
    {
        if (hosts.Count == 0)
        {
            return [];
        }
        // Weights are usually all 1; reduce by their GCD so the expansion stays small.
        var gcd = hosts.Select(e => Math.Max(1, e.Weight)).Aggregate(Gcd);
        return [.. hosts.SelectMany(e => Enumerable.Repeat(e.Endpoint, Math.Min(100, Math.Max(1, e.Weight) / gcd)))];
    }

    private static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);
}
