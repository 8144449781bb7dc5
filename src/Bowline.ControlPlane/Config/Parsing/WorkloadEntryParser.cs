namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>Istio <c>WorkloadEntry</c>: one workload instance with its address, ports and labels.</summary>
internal static class WorkloadEntryParser
{
    public static MeshResource? Parse(ResourceMeta meta, FieldReader spec)
    {
        var address = spec.String("address", required: true);
        var ports = spec.IntMap("ports", 1, 65535);
        var labels = spec.StringMap("labels");
        var serviceAccount = spec.String("serviceAccount");
        var weight = spec.Int("weight", min: 0, max: 1 << 24) ?? 1;
        spec.String("network");
        var locality = spec.String("locality");
        if (address is not null && !System.Net.IPAddress.TryParse(address, out _))
        {
            spec.Error("address", $"'{address}' is not an IP address; Bowline does not resolve host names for WorkloadEntries yet");
            return null;
        }
        return address is null ? null : new WorkloadEntry(meta, address, ports, labels, serviceAccount, weight == 0 ? 1 : weight)
        {
            Locality = string.IsNullOrEmpty(locality) ? LocalityFromLabels(labels) : locality,
        };
    }

    /// <summary>
    /// Istio's fallback when <c>locality</c> is empty: the <c>topology.istio.io/locality</c> label, else the older
    /// <c>istio-locality</c>, whose parts may be separated by dots (label values cannot hold '/').
    /// </summary>
    private static string? LocalityFromLabels(IReadOnlyDictionary<string, string> labels)
    {
        var label = labels.GetValueOrDefault("topology.istio.io/locality") ?? labels.GetValueOrDefault("istio-locality");
        return string.IsNullOrEmpty(label) ? null : label.Contains('/', StringComparison.Ordinal) ? label : label.Replace('.', '/');
    }
}
