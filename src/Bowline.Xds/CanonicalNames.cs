namespace Bowline.Xds;

/// <summary>
/// Istio's canonical service and revision of a workload, from its labels as Istio's injector derives them: the
/// explicit <c>service.istio.io/canonical-*</c> labels, then the Kubernetes recommended ones, then <c>app</c>/<c>version</c>.
/// The control plane writes them into span tags and the proxy into metric labels; both must agree.
/// </summary>
public static class CanonicalNames
{
    public const string ServiceLabel = "service.istio.io/canonical-name";
    public const string RevisionLabel = "service.istio.io/canonical-revision";

    /// <summary>The EDS endpoint filter metadata Istio writes the server's workload under: <c>istio</c> / <c>workload</c>.</summary>
    public const string EndpointMetadataKey = "istio";
    public const string EndpointWorkloadField = "workload";

    public static string Service(IReadOnlyDictionary<string, string> labels, string workload) =>
        labels.GetValueOrDefault(ServiceLabel) ?? labels.GetValueOrDefault("app.kubernetes.io/name") ?? labels.GetValueOrDefault("app") ?? workload;

    public static string Revision(IReadOnlyDictionary<string, string> labels) =>
        labels.GetValueOrDefault(RevisionLabel) ?? labels.GetValueOrDefault("app.kubernetes.io/version") ?? labels.GetValueOrDefault("version") ?? "latest";

    /// <summary>
    /// Istio's compressed endpoint telemetry metadata (<c>AppendLbEndpointMetadata</c>):
    /// <c>name;namespace;canonical-service;canonical-revision;cluster-id</c>, the revision left empty when it is the
    /// default <c>latest</c>.
    /// </summary>
    public static string EndpointWorkload(string workload, string ns, IReadOnlyDictionary<string, string> labels, string clusterId)
    {
        var revision = Revision(labels);
        return string.Join(';', workload, ns, Service(labels, workload), revision == "latest" ? "" : revision, clusterId);
    }
}
