namespace Bowline.ControlPlane.Registry;

/// <summary>
/// Where a workload or a proxy runs: Istio's locality <c>region/zone/subzone</c> (each part may be empty, the later
/// ones only when the earlier are). Compared part by part for locality failover.
/// </summary>
internal sealed record MeshLocality(string Region, string Zone, string SubZone)
{
    /// <summary>Istio's topology labels, which carry a locality in workload and proxy labels.</summary>
    public const string RegionLabel = "topology.kubernetes.io/region";

    public const string ZoneLabel = "topology.kubernetes.io/zone";

    public const string SubZoneLabel = "topology.istio.io/subzone";

    public static readonly MeshLocality None = new(string.Empty, string.Empty, string.Empty);

    public bool IsEmpty => Region.Length == 0 && Zone.Length == 0 && SubZone.Length == 0;

    /// <summary>Istio's reading of a locality label: up to three parts split on '/', missing parts empty.</summary>
    public static MeshLocality Parse(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return None;
        }
        var parts = text.Split('/');
        return new MeshLocality(parts[0], parts.Length > 1 ? parts[1] : string.Empty, parts.Length > 2 ? parts[2] : string.Empty);
    }

    /// <summary>The locality in the topology labels, or null when there is no region label.</summary>
    public static MeshLocality? FromLabels(IReadOnlyDictionary<string, string> labels) =>
        labels.TryGetValue(RegionLabel, out var region) && region.Length > 0
            ? new MeshLocality(region, labels.GetValueOrDefault(ZoneLabel, string.Empty), labels.GetValueOrDefault(SubZoneLabel, string.Empty))
            : null;

    /// <summary>
    /// Istio's AugmentLabels: <paramref name="labels"/> with the topology labels of this locality added (its non-empty
    /// parts win over labels of the same name), as failoverPriority compares them.
    /// </summary>
    public IReadOnlyDictionary<string, string> AddTopologyLabels(IReadOnlyDictionary<string, string> labels)
    {
        if (IsEmpty)
        {
            return labels;
        }
        var result = new Dictionary<string, string>(labels, StringComparer.Ordinal);
        if (Region.Length > 0)
        {
            result[RegionLabel] = Region;
        }
        if (Zone.Length > 0)
        {
            result[ZoneLabel] = Zone;
        }
        if (SubZone.Length > 0)
        {
            result[SubZoneLabel] = SubZone;
        }
        return result;
    }

    /// <summary>The <c>region/zone/subzone</c> form, trailing empty parts left out (Istio's LocalityToString).</summary>
    public override string ToString() =>
        Zone.Length == 0 ? Region : SubZone.Length == 0 ? $"{Region}/{Zone}" : $"{Region}/{Zone}/{SubZone}";
}
