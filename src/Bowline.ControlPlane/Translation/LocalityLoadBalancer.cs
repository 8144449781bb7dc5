using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;

namespace Bowline.ControlPlane.Translation;

/// <summary>The endpoints of one cluster in one locality (or, under failoverPriority, one part of it) at one EDS priority.</summary>
/// <param name="Priority">Envoy's <c>LocalityLbEndpoints.priority</c>: 0 is used first, the next only when no host of the lower is available.</param>
internal sealed record LocalityEndpoints(MeshLocality Locality, IReadOnlyList<MeshEndpoint> Endpoints, uint Priority);

/// <summary>
/// Istio's locality load balancing for one connecting proxy: endpoints grouped by locality, and — when failover
/// applies — EDS priorities by how near each locality is to the proxy (same subzone 0, same zone 1, same region 2,
/// elsewhere 3, with unused levels compacted), remapped by <c>failover</c> and refined by <c>failoverPriority</c>.
/// </summary>
/// <remarks>
/// Failover applies, as in Istio, only when the cluster's policy has outlierDetection (otherwise nothing would ever
/// move traffic off priority 0) and locality load balancing is not disabled (<c>enabled: false</c>); Istio's mesh
/// default enables it, so outlierDetection alone turns it on.
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

    /// <summary>The groups with the priorities Istio gives them for a proxy at <paramref name="node"/>'s locality under <paramref name="policy"/>.</summary>
    public static IReadOnlyList<LocalityEndpoints> Prioritize(IReadOnlyList<LocalityEndpoints> groups, ProxyNode node, TrafficPolicy? policy)
    {
        var setting = policy?.LoadBalancer?.Locality;
        // distribute is not applied yet (a parse warning says so); with it Istio sets weights and no priorities.
        if (policy?.OutlierDetection is null || setting is { Enabled: false } or { HasDistribute: true } || groups.Count == 0)
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
