using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;

namespace Bowline.ControlPlane.Translation;

/// <summary>The endpoints of one cluster in one locality (or, under failoverPriority, one part of it) at one EDS priority.</summary>
/// <param name="Priority">Envoy's <c>LocalityLbEndpoints.priority</c>: 0 is used first, the next only when no host of the lower is available.</param>
internal sealed record LocalityEndpoints(MeshLocality Locality, IReadOnlyList<MeshEndpoint> Endpoints, uint Priority)
{
    /// <summary>The locality's <c>load_balancing_weight</c> set by <c>distribute</c>; null: the sum of its endpoints' weights.</summary>
    public uint? Weight { get; init; }

    /// <summary>The sum of the endpoints' weights (each at least 1), saturated at uint32 as Envoy caps a priority's total.</summary>
    public uint EndpointWeight => (uint)Math.Min(Endpoints.Aggregate(0UL, (sum, e) => sum + (uint)Math.Max(1, e.Weight)), uint.MaxValue);
}

/// <summary>
/// Istio's locality load balancing for one connecting proxy: endpoints grouped by locality, and either — with
/// <c>distribute</c> — locality weights from the first rule whose <c>from</c> matches the proxy, or — when failover
/// applies — EDS priorities by how near each locality is to the proxy (same subzone 0, same zone 1, same region 2,
/// elsewhere 3, with unused levels compacted), remapped by <c>failover</c> and refined by <c>failoverPriority</c>.
/// </summary>
/// <remarks>
/// Failover applies, as in Istio, only when the cluster's policy has outlierDetection (otherwise nothing would ever
/// move traffic off priority 0) and locality load balancing is not disabled (<c>enabled: false</c>); Istio's mesh
/// default enables it, so outlierDetection alone turns it on. Distribute needs no outlierDetection.
/// </remarks>
internal static class LocalityLoadBalancer
{
    /// <summary>Istio's network label: a mismatch on it, first in failoverPriority, ranks below every other mismatch.</summary>
    private const string NetworkLabel = "topology.istio.io/network";

    /// <summary>Locality failover levels: subzone, zone, region, the <c>failover</c> target region, any other region.</summary>
    private const uint LocalityLevels = 5;

    /// <summary>One group per locality, ordered by the locality's name (as Istio orders them), all at priority 0.</summary>
    public static IReadOnlyList<LocalityEndpoints> Group(IReadOnlyList<MeshEndpoint> endpoints) =>
        endpoints.GroupBy(e => e.Locality)
            .OrderBy(g => g.Key.ToString(), StringComparer.Ordinal)
            .Select(g => new LocalityEndpoints(g.Key, g.ToList(), 0))
            .ToList();

    /// <summary>The groups with the priorities (or, under distribute, the weights) Istio gives them for a proxy at <paramref name="node"/>'s locality under <paramref name="policy"/>.</summary>
    public static IReadOnlyList<LocalityEndpoints> Prioritize(IReadOnlyList<LocalityEndpoints> groups, ProxyNode node, TrafficPolicy? policy)
    {
        var setting = policy?.LoadBalancer?.Locality;
        if (setting is { Enabled: false } || groups.Count == 0)
        {
            return groups;
        }
        // With distribute Istio sets weights and never failover priorities, outlierDetection or not.
        if (setting is { Distribute.Count: > 0 })
        {
            return Distribute(groups, node.Locality, setting.Distribute);
        }
        if (policy?.OutlierDetection is null)
        {
            return groups;
        }
        var failover = setting?.Failover ?? [];
        var failoverPriority = setting?.FailoverPriority ?? [];
        if (failoverPriority.Count == 0)
        {
            return ByLocality(groups, node.Locality, failover);
        }
        var byLabels = ByLabels(groups, node.Locality.AddTopologyLabels(node.Labels), failoverPriority);
        // Istio orders by locality beside failoverPriority only when failover is given explicitly.
        return failover.Count > 0 ? ByLocality(byLabels, node.Locality, failover) : byLabels;
    }

    /// <summary>
    /// Whether the cluster gets <c>common_lb_config.locality_weighted_lb_config</c>, Istio's condition: locality load
    /// balancing is not disabled and either distribute is given, or failover or failoverPriority is given and
    /// outlierDetection makes failover apply. Without it Envoy would ignore the locality weights (and Istio leaves it
    /// off otherwise, since it changes how LEAST_REQUEST and the other policies spread load).
    /// </summary>
    public static bool UsesLocalityWeights(TrafficPolicy? policy) =>
        policy?.LoadBalancer?.Locality is { Enabled: true } setting
        && (setting.Distribute.Count > 0 || (policy.OutlierDetection is not null && (setting.Failover.Count > 0 || setting.FailoverPriority.Count > 0)));

    /// <summary>
    /// Istio's distribute: the first rule whose <c>from</c> matches the proxy's locality decides. Each <c>to</c> entry
    /// takes the localities it matches that no earlier entry took, and gives each of them its weight × the locality's
    /// own weight ÷ the total own weight of the localities it took, rounded up (so a wildcard splits its share in
    /// proportion to their endpoints). A locality no entry takes gets no traffic: it is left out. No rule matching:
    /// the groups as they are.
    /// </summary>
    private static IReadOnlyList<LocalityEndpoints> Distribute(IReadOnlyList<LocalityEndpoints> groups, MeshLocality proxy, IReadOnlyList<LocalityDistribute> distribute)
    {
        if (distribute.FirstOrDefault(d => Matches(proxy, d.From)) is not { } rule)
        {
            return groups;
        }
        var weighted = new LocalityEndpoints?[groups.Count];
        foreach (var (pattern, weight) in rule.To)
        {
            var taken = Enumerable.Range(0, groups.Count).Where(i => weighted[i] is null && Matches(groups[i].Locality, pattern)).ToList();
            var total = taken.Aggregate(0UL, (sum, i) => sum + groups[i].EndpointWeight);
            foreach (var i in taken)
            {
                // Exact integer ceiling of what Istio computes in floating point.
                var share = ((groups[i].EndpointWeight * (ulong)weight) + total - 1) / total;
                weighted[i] = groups[i] with { Weight = (uint)Math.Min(share, uint.MaxValue) };
            }
        }
        return weighted.OfType<LocalityEndpoints>().ToList();
    }

    /// <summary>
    /// Istio's LocalityMatch: <paramref name="pattern"/> is <c>region[/zone[/subzone]]</c>; <c>*</c> matches any value
    /// of its part, an omitted zone or subzone matches any, and a region must be given (or <c>*</c>).
    /// </summary>
    private static bool Matches(MeshLocality locality, string pattern)
    {
        var parts = pattern.Split('/');
        var region = parts[0];
        var zone = parts.Length > 1 ? parts[1] : string.Empty;
        var subZone = parts.Length > 2 ? parts[2] : string.Empty;
        return (region == "*" || region == locality.Region)
            && (zone is "*" or "" || zone == locality.Zone)
            && (subZone is "*" or "" || subZone == locality.SubZone);
    }

    /// <summary>
    /// Istio's locality failover: each group's priority becomes its earlier priority × 5 plus its locality level, so
    /// earlier priorities (from failoverPriority) still rank first; then priorities are compacted to 0..N.
    /// </summary>
    private static IReadOnlyList<LocalityEndpoints> ByLocality(IReadOnlyList<LocalityEndpoints> groups, MeshLocality proxy, IReadOnlyList<LocalityFailover> failover)
    {
        var ranked = groups.Select(g => g with { Priority = (g.Priority * LocalityLevels) + Level(proxy, g.Locality, failover) }).ToList();
        return Compact(ranked);
    }

    private static uint Level(MeshLocality proxy, MeshLocality endpoint, IReadOnlyList<LocalityFailover> failover)
    {
        if (proxy.Region != endpoint.Region)
        {
            // The first remapping from the proxy's region decides: its target ranks 3, every other region 4.
            return failover.FirstOrDefault(f => f.From == proxy.Region) is { } remap && remap.To != endpoint.Region ? 4u : 3u;
        }
        return proxy.Zone != endpoint.Zone ? 2u : proxy.SubZone != endpoint.SubZone ? 1u : 0u;
    }

    /// <summary>
    /// Istio's failoverPriority: within each locality, an endpoint whose labels first differ from the proxy's at label
    /// <c>j</c> (of <c>n</c>) gets priority <c>n - j</c> (0 when all match); a label written <c>key=value</c> compares
    /// the endpoint with that value instead of the proxy's. A locality splits into one group per priority.
    /// </summary>
    private static IReadOnlyList<LocalityEndpoints> ByLabels(IReadOnlyList<LocalityEndpoints> groups, IReadOnlyDictionary<string, string> proxyLabels, IReadOnlyList<string> failoverPriority)
    {
        if (proxyLabels.Count == 0)
        {
            return groups;
        }
        var labels = failoverPriority.Select(p => p.Split('=', 2)).Select(p => (Name: p[0], Override: p.Length == 2 ? p[1] : null)).ToList();
        var includesNetwork = failoverPriority[0] == NetworkLabel;
        var split = new List<LocalityEndpoints>();
        foreach (var group in groups)
        {
            var byPriority = group.Endpoints
                .GroupBy(e => LabelPriority(group.Locality.AddTopologyLabels(e.Labels), proxyLabels, labels, includesNetwork))
                .OrderBy(g => g.Key);
            split.AddRange(byPriority.Select(g => new LocalityEndpoints(group.Locality, g.ToList(), g.Key)));
        }
        return Compact(split);
    }

    private static uint LabelPriority(IReadOnlyDictionary<string, string> endpointLabels, IReadOnlyDictionary<string, string> proxyLabels, IReadOnlyList<(string Name, string? Override)> labels, bool includesNetwork)
    {
        var priority = 0;
        var adjust = 0;
        for (var j = 0; j < labels.Count; j++)
        {
            var (name, forced) = labels[j];
            var wanted = forced ?? proxyLabels.GetValueOrDefault(name, string.Empty);
            if (wanted == endpointLabels.GetValueOrDefault(name, string.Empty))
            {
                continue;
            }
            if (j == 0 && includesNetwork)
            {
                // Another network ranks after every same-network endpoint, and its own endpoints are still ordered by the other labels.
                adjust = labels.Count;
                continue;
            }
            priority = labels.Count - j;
            break;
        }
        return (uint)(priority + adjust);
    }

    /// <summary>Renumbers priorities 0..N in order, as Envoy requires (no level may be empty).</summary>
    private static IReadOnlyList<LocalityEndpoints> Compact(List<LocalityEndpoints> groups)
    {
        var order = groups.Select(g => g.Priority).Distinct().Order().Select((p, i) => (p, i)).ToDictionary(x => x.p, x => (uint)x.i);
        return groups.Select(g => g with { Priority = order[g.Priority] }).ToList();
    }
}
