namespace Bowline.Xds;

/// <summary>
/// Istio's canonical service and revision of a workload, from its labels as Istio's injector derives them: the
/// explicit <c>service.istio.io/canonical-*</c> labels, then the Kubernetes recommended ones, then <c>app</c>/<c>version</c>.
/// The control plane writes them into span tags and the proxy into metric labels; both must agree.
/// </summary>
public static class CanonicalNames
{
    public static string Service(IReadOnlyDictionary<string, string> labels, string workload) =>
        labels.GetValueOrDefault("service.istio.io/canonical-name") ?? labels.GetValueOrDefault("app.kubernetes.io/name") ?? labels.GetValueOrDefault("app") ?? workload;

    public static string Revision(IReadOnlyDictionary<string, string> labels) =>
        labels.GetValueOrDefault("service.istio.io/canonical-revision") ?? labels.GetValueOrDefault("app.kubernetes.io/version") ?? labels.GetValueOrDefault("version") ?? "latest";
}
