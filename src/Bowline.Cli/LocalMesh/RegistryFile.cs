using System.Text;

namespace Bowline.Cli.LocalMesh;

/// <summary>
/// A workload's entry in the file-backed registry: a WorkloadEntry at <c>registry/&lt;namespace&gt;.&lt;name&gt;.yaml</c>
/// whose ports are its sidecar's inbound ports. The control plane watches the directory, so writing the file is how
/// every other sidecar learns the endpoint, and removing it is how they forget it.
/// </summary>
internal static class RegistryFile
{
    public static string PathOf(StateLayout state, WorkloadPlan plan) =>
        Path.Combine(state.Registry, $"{plan.Namespace}.{plan.Name}.yaml");

    public static void Write(StateLayout state, WorkloadPlan plan)
    {
        var labels = Map(plan.Workload.Meta.Labels.Select(l => (l.Key, Quote(l.Value))));
        // Istio's injector label: this workload has a sidecar, so peers reach it over mesh mTLS (auto mTLS).
        var endpointLabels = Map(plan.Workload.Meta.Labels.Select(l => (l.Key, Quote(l.Value))).Append(("security.istio.io/tlsMode", Quote("istio"))));
        var ports = Map(plan.ServicePorts.Select(p => (p.Key, p.Value.ToString(System.Globalization.CultureInfo.InvariantCulture))));
        var yaml = new StringBuilder()
            .Append("# Written by bowline up while this workload runs; removed when it stops.\n")
            .Append("apiVersion: networking.istio.io/v1\n")
            .Append("kind: WorkloadEntry\n")
            .Append($"metadata: {{name: {Quote(plan.Name)}, namespace: {Quote(plan.Namespace)}, labels: {labels}}}\n")
            .Append("spec:\n")
            .Append("  address: 127.0.0.1\n")
            .Append($"  labels: {endpointLabels}\n")
            .Append($"  serviceAccount: {Quote(plan.ServiceAccount)}\n")
            .Append($"  ports: {ports}\n")
            .ToString();
        var path = PathOf(state, plan);
        // Write beside, then rename: the watcher must never read a half-written file. A dot file is not config.
        var temporary = Path.Combine(state.Registry, $".{Path.GetFileName(path)}.tmp");
        File.WriteAllText(temporary, yaml);
        File.Move(temporary, path, overwrite: true);
    }

    public static void Remove(StateLayout state, WorkloadPlan plan) => File.Delete(PathOf(state, plan));

    /// <summary>Removes entries an earlier <c>up</c> left behind when it was killed, so no dead endpoint is served.</summary>
    public static void RemoveAll(StateLayout state)
    {
        foreach (var file in Directory.EnumerateFiles(state.Registry))
        {
            File.Delete(file);
        }
    }

    private static string Map(IEnumerable<(string Key, string Value)> entries) =>
        "{" + string.Join(", ", entries.Select(e => $"{Quote(e.Key)}: {e.Value}")) + "}";

    /// <summary>A YAML double-quoted scalar, so label values like <c>true</c>, <c>1.0</c> or <c>a: b</c> stay strings.</summary>
    private static string Quote(string value) =>
        "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}
