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
        spec.String("locality");
        if (address is not null && !System.Net.IPAddress.TryParse(address, out _))
        {
            spec.Error("address", $"'{address}' is not an IP address; Bowline does not resolve host names for WorkloadEntries yet");
            return null;
        }
        return address is null ? null : new WorkloadEntry(meta, address, ports, labels, serviceAccount, weight == 0 ? 1 : weight);
    }
}
