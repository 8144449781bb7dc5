using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Tests.Infrastructure;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>
/// Istio's bookinfo as the translator sees it: the sample's Services, DestinationRules and Gateway, plus one
/// WorkloadEntry per workload on fixed loopback ports (as <c>bowline up</c> registers them: the port is the workload
/// sidecar's inbound listener).
/// </summary>
internal static class Bookinfo
{
    public const string Reviews = "reviews.default.svc.cluster.local";

    /// <summary>Workload name, labels' version, and the sidecar port its WorkloadEntry gives for port name <c>http</c>.</summary>
    public static readonly IReadOnlyList<(string App, string Version, int Port)> Workloads =
    [
        ("details", "v1", 15101),
        ("productpage", "v1", 15006),
        ("ratings", "v1", 15201),
        ("reviews", "v1", 15301),
        ("reviews", "v2", 15302),
        ("reviews", "v3", 15303),
    ];

    public static string WorkloadEntries => Entries(_ => "");

    /// <summary>
    /// The workloads as <c>bowline up</c> registers them with mesh mTLS: each names its service account
    /// (<c>bookinfo-&lt;app&gt;</c>, as Istio's sample does), which makes Istio take it for a workload with a sidecar.
    /// </summary>
    public static string SidecarWorkloadEntries => Entries(w => $"serviceAccount: bookinfo-{w.App}");

    /// <summary>The WorkloadEntries, with <paramref name="extra"/> spec lines for each (a service account, more labels).</summary>
    public static string Entries(Func<(string App, string Version, int Port), string> extra) => string.Join("---\n", Workloads.Select(w => $"""
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata:
          name: {w.App}-{w.Version}
          namespace: default
        spec:
          address: 127.0.0.1
          labels: {"{"}app: {w.App}, version: {w.Version}{"}"}
          ports: {"{"}http: {w.Port}{"}"}
          {extra(w)}

        """));

    /// <summary>The mesh of bookinfo with, optionally, extra YAML documents (a task's VirtualService).</summary>
    public static ServiceIndex Index(params string[] extraYaml) => Build(WorkloadEntries, MeshSecurity.Off, extraYaml);

    /// <summary>Bookinfo with mesh mTLS on (trust domain <c>cluster.local</c>), the given WorkloadEntries and extra YAML documents.</summary>
    public static ServiceIndex MtlsIndex(string workloadEntries, params string[] extraYaml) => Build(workloadEntries, new MeshSecurity(true, MeshSecurity.DefaultTrustDomain), extraYaml);

    /// <summary>Bookinfo under the given security settings.</summary>
    public static ServiceIndex Build(string workloadEntries, MeshSecurity security, params string[] extraYaml)
    {
        var resources = TestFiles.ParseBookinfo("services.yaml", "destination-rule-all.yaml", "bookinfo-gateway.yaml").ToList();
        resources.AddRange(TestFiles.ParseValid("workload-entries.yaml", workloadEntries));
        for (var i = 0; i < extraYaml.Length; i++)
        {
            resources.AddRange(TestFiles.ParseValid($"extra-{i}.yaml", extraYaml[i]));
        }
        return new ServiceIndex(new MeshConfig(resources, 1, security));
    }

    /// <summary>Bookinfo plus one of the sample's task files.</summary>
    public static ServiceIndex WithTask(string task) => Index(File.ReadAllText(TestFiles.Bookinfo($"tasks/{task}")));
}
