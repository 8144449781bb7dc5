using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Snapshots;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Endpoint.V3;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>The mesh the locality load-balancing tests translate: a <c>pay</c> service whose workloads run in three localities.</summary>
internal static class LocalityMesh
{
    public const string ClusterName = "outbound|8080||pay.default.svc.cluster.local";

    public const string Outlier = "outlierDetection: {consecutive5xxErrors: 5, interval: 10s}";

    private const string Service = """
        apiVersion: v1
        kind: Service
        metadata: {name: pay, namespace: default}
        spec:
          selector: {app: pay}
          ports: [{name: http, port: 8080}]
        """;

    /// <summary>The pay workloads: name, address, version label and locality.</summary>
    private static readonly (string Name, string Address, string Version, string Locality)[] Workloads =
    [
        ("pay-a", "10.0.0.1", "v1", "us-east/zone-a"),
        ("pay-b", "10.0.0.2", "v2", "us-east/zone-b"),
        ("pay-c", "10.0.0.3", "v1", "us-west/zone-c"),
    ];

    private static string Entry(string name, string address, string version, string locality) => $$"""
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: {{name}}, namespace: default}
        spec:
          address: {{address}}
          labels: {app: pay, version: {{version}}}
          locality: {{locality}}
          ports: {http: 8080}
        """;

    public static string Rule(string trafficPolicy) => $$"""
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: pay, namespace: default}
        spec:
          host: pay
          trafficPolicy: {{trafficPolicy}}
        """;

    /// <summary>The productpage sidecar at a locality (as <c>bowline proxy --locality us-east/zone-a</c> sends it).</summary>
    public static ProxyNode ProxyIn(string region, string zone, string subZone = "")
    {
        var node = TestNodes.ProductpageSidecar();
        node.Locality = new Envoy.Config.Core.V3.Locality { Region = region, Zone = zone, SubZone = subZone };
        return ProxyNode.From(node);
    }

    /// <summary>
    /// The pay workloads plus <paramref name="extra"/> ones, and <paramref name="document"/> (a DestinationRule or a
    /// VirtualService) if given, translated for <paramref name="node"/>.
    /// </summary>
    public static XdsSnapshot Translate(ProxyNode node, string? document, params (string Name, string Address, string Version, string Locality)[] extra)
    {
        var yaml = new List<string> { Service };
        yaml.AddRange(Workloads.Concat(extra).Select(w => Entry(w.Name, w.Address, w.Version, w.Locality)));
        if (document is not null)
        {
            yaml.Add(document);
        }
        var resources = yaml.SelectMany((y, i) => TestFiles.ParseValid($"locality-{i}.yaml", y)).ToList();
        return MeshTranslator.Translate(new ServiceIndex(new MeshConfig(resources, 1)), node);
    }

    public static ClusterLoadAssignment Assignment(ProxyNode node, string? rule, params (string Name, string Address, string Version, string Locality)[] extra) =>
        Endpoints(Translate(node, rule, extra));

    public static ClusterLoadAssignment Endpoints(XdsSnapshot snapshot) =>
        Assert.IsType<ClusterLoadAssignment>(snapshot.Get(TypeUrls.ClusterLoadAssignment)!.Resources[ClusterName].Message);

    public static Envoy.Config.Cluster.V3.Cluster Cluster(XdsSnapshot snapshot) =>
        Assert.IsType<Envoy.Config.Cluster.V3.Cluster>(snapshot.Get(TypeUrls.Cluster)!.Resources[ClusterName].Message);

    /// <summary>Each locality as "region/zone/subzone=priority:addresses".</summary>
    public static string[] Priorities(ClusterLoadAssignment assignment) =>
        assignment.Endpoints
            .Select(l => $"{l.Locality.Region}/{l.Locality.Zone}/{l.Locality.SubZone}={l.Priority}:{string.Join(",", l.LbEndpoints.Select(e => e.Endpoint.Address.SocketAddress.Address))}")
            .ToArray();

    /// <summary>Each locality as "region/zone/subzone=weight".</summary>
    public static string[] Weights(ClusterLoadAssignment assignment) =>
        assignment.Endpoints.Select(l => $"{l.Locality.Region}/{l.Locality.Zone}/{l.Locality.SubZone}={l.LoadBalancingWeight}").ToArray();
}
