using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Endpoint.V3;
using static Bowline.ControlPlane.Tests.Translation.LocalityMesh;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>
/// Istio's locality load balancing (pilot's loadbalancer.go): one LocalityLbEndpoints per locality, and with
/// outlierDetection, EDS priorities by nearness to the connecting proxy, remapped by failover and failoverPriority.
/// </summary>
public sealed class LocalityLoadBalancingTranslationTests
{
    [Fact]
    public void From_NodeLocality_IsTheProxysLocality()
    {
        var node = ProxyIn("us-east", "zone-a", "rack-1");

        Assert.Equal(new MeshLocality("us-east", "zone-a", "rack-1"), node.Locality);
        Assert.Equal("us-east/zone-a/rack-1", node.Locality.ToString());
        Assert.Equal(MeshLocality.None, ProxyNode.From(TestNodes.ProductpageSidecar()).Locality);
    }

    [Fact]
    public void From_TopologyLabels_WinOverNodeLocality()
    {
        // Istio reads the registry's topology labels first, the node's locality only without them.
        var node = TestNodes.ProductpageSidecar();
        node.Locality = new Envoy.Config.Core.V3.Locality { Region = "us-east", Zone = "zone-a" };
        var labels = node.Metadata.Fields["LABELS"].StructValue.Fields;
        labels[MeshLocality.RegionLabel] = Google.Protobuf.WellKnownTypes.Value.ForString("eu-west");
        labels[MeshLocality.ZoneLabel] = Google.Protobuf.WellKnownTypes.Value.ForString("zone-d");

        Assert.Equal(new MeshLocality("eu-west", "zone-d", ""), ProxyNode.From(node).Locality);
    }

    [Fact]
    public void Translate_WithoutOutlierDetection_GroupsByLocalityAllAtPriorityZero()
    {
        var assignment = Assignment(ProxyIn("us-east", "zone-a"), null);

        Assert.Equal(["us-east/zone-a/=0:10.0.0.1", "us-east/zone-b/=0:10.0.0.2", "us-west/zone-c/=0:10.0.0.3"], Priorities(assignment));
        Assert.All(assignment.Endpoints, l => Assert.Equal(1u, l.LoadBalancingWeight));
    }

    [Fact]
    public void Translate_OutlierDetectionWithoutLocalitySetting_FailsOverZoneThenRegion()
    {
        // Istio's mesh default enables locality LB: outlierDetection alone turns failover on. Levels 0, 2, 3 compact to 0, 1, 2.
        var assignment = Assignment(ProxyIn("us-east", "zone-a"), Rule($"{{{Outlier}}}"));

        Assert.Equal(["us-east/zone-a/=0:10.0.0.1", "us-east/zone-b/=1:10.0.0.2", "us-west/zone-c/=2:10.0.0.3"], Priorities(assignment));
    }

    [Fact]
    public void Translate_OutlierDetection_SubzoneZoneRegionAndElsewhereAreFourPriorities()
    {
        var assignment = Assignment(ProxyIn("us-east", "zone-a", "rack-1"), Rule($"{{{Outlier}}}"), ("pay-d", "10.0.0.4", "v1", "us-east/zone-a/rack-1"));

        Assert.Equal(
            ["us-east/zone-a/=1:10.0.0.1", "us-east/zone-a/rack-1=0:10.0.0.4", "us-east/zone-b/=2:10.0.0.2", "us-west/zone-c/=3:10.0.0.3"],
            Priorities(assignment));
    }

    [Fact]
    public void Translate_LocalityLbDisabled_KeepsPriorityZeroDespiteOutlierDetection()
    {
        var assignment = Assignment(ProxyIn("us-east", "zone-a"), Rule($"{{{Outlier}, loadBalancer: {{localityLbSetting: {{enabled: false}}}}}}"));

        Assert.All(assignment.Endpoints, l => Assert.Equal(0u, l.Priority));
        Assert.Equal(3, assignment.Endpoints.Count);
    }

    [Fact]
    public void Translate_FailoverRemapping_PutsTheTargetRegionBeforeOtherRegions()
    {
        var assignment = Assignment(
            ProxyIn("us-east", "zone-a"),
            Rule($"{{{Outlier}, loadBalancer: {{localityLbSetting: {{failover: [{{from: us-east, to: eu-west}}]}}}}}}"),
            ("pay-e", "10.0.0.5", "v1", "eu-west/zone-e"));

        Assert.Equal(
            ["eu-west/zone-e/=2:10.0.0.5", "us-east/zone-a/=0:10.0.0.1", "us-east/zone-b/=1:10.0.0.2", "us-west/zone-c/=3:10.0.0.3"],
            Priorities(assignment));
    }

    [Fact]
    public void Translate_FailoverFromAnotherRegion_DoesNotApplyToThisProxy()
    {
        var assignment = Assignment(
            ProxyIn("us-east", "zone-a"),
            Rule($"{{{Outlier}, loadBalancer: {{localityLbSetting: {{failover: [{{from: us-west, to: eu-west}}]}}}}}}"),
            ("pay-e", "10.0.0.5", "v1", "eu-west/zone-e"));

        Assert.Equal(
            ["eu-west/zone-e/=2:10.0.0.5", "us-east/zone-a/=0:10.0.0.1", "us-east/zone-b/=1:10.0.0.2", "us-west/zone-c/=2:10.0.0.3"],
            Priorities(assignment));
    }

    [Fact]
    public void Translate_FailoverPriorityLabel_RanksByTheProxysLabelNotItsLocality()
    {
        // productpage-v1 carries version: v1; without an explicit failover, Istio orders by the labels only.
        var assignment = Assignment(ProxyIn("us-east", "zone-a"), Rule($"{{{Outlier}, loadBalancer: {{localityLbSetting: {{failoverPriority: [version]}}}}}}"));

        Assert.Equal(["us-east/zone-a/=0:10.0.0.1", "us-east/zone-b/=1:10.0.0.2", "us-west/zone-c/=0:10.0.0.3"], Priorities(assignment));
    }

    [Fact]
    public void Translate_FailoverPriorityWithValue_PrefersThatValue()
    {
        var assignment = Assignment(ProxyIn("us-east", "zone-a"), Rule($"{{{Outlier}, loadBalancer: {{localityLbSetting: {{failoverPriority: [version=v2]}}}}}}"));

        Assert.Equal(["us-east/zone-a/=1:10.0.0.1", "us-east/zone-b/=0:10.0.0.2", "us-west/zone-c/=1:10.0.0.3"], Priorities(assignment));
    }

    [Fact]
    public void Translate_FailoverPriorityTopologyLabels_MatchTheLocalities()
    {
        // Istio adds the topology labels from each locality to the endpoint's and the proxy's labels.
        var assignment = Assignment(
            ProxyIn("us-east", "zone-a"),
            Rule($"{{{Outlier}, loadBalancer: {{localityLbSetting: {{failoverPriority: [topology.kubernetes.io/region, topology.kubernetes.io/zone]}}}}}}"));

        Assert.Equal(["us-east/zone-a/=0:10.0.0.1", "us-east/zone-b/=1:10.0.0.2", "us-west/zone-c/=2:10.0.0.3"], Priorities(assignment));
    }

    [Fact]
    public void Translate_FailoverPriorityWithFailover_SplitsALocalityByLabelThenOrdersByRegion()
    {
        // pay-f shares zone-a with pay-a but not its version: the label ranks first (× 5), then the locality level.
        var assignment = Assignment(
            ProxyIn("us-east", "zone-a"),
            Rule($"{{{Outlier}, loadBalancer: {{localityLbSetting: {{failoverPriority: [version], failover: [{{from: us-east, to: us-west}}]}}}}}}"),
            ("pay-f", "10.0.0.6", "v2", "us-east/zone-a"));

        Assert.Equal(
            ["us-east/zone-a/=0:10.0.0.1", "us-east/zone-a/=2:10.0.0.6", "us-east/zone-b/=3:10.0.0.2", "us-west/zone-c/=1:10.0.0.3"],
            Priorities(assignment));
    }

    [Theory]
    [InlineData("{" + Outlier + ", loadBalancer: {localityLbSetting: {failover: [{from: us-east, to: us-west}]}}}", true)]
    [InlineData("{" + Outlier + ", loadBalancer: {localityLbSetting: {failoverPriority: [version]}}}", true)]
    [InlineData("{" + Outlier + "}", false)]
    [InlineData("{loadBalancer: {localityLbSetting: {failover: [{from: us-east, to: us-west}]}}}", false)]
    [InlineData("{" + Outlier + ", loadBalancer: {localityLbSetting: {enabled: false, failoverPriority: [version]}}}", false)]
    public void Translate_ExplicitFailoverThatApplies_SetsLocalityWeightedLbConfigAsIstioDoes(string trafficPolicy, bool expected)
    {
        // Istio's condition: failover or failoverPriority given, outlierDetection present, locality LB not disabled.
        var cluster = Cluster(Translate(ProxyIn("us-east", "zone-a"), Rule(trafficPolicy)));

        Assert.Equal(expected, cluster.CommonLbConfig?.LocalityWeightedLbConfig is not null);
    }

    [Fact]
    public void Translate_RetryRemoteLocalities_IsThePreviousPrioritiesRetryPriority()
    {
        const string vs = """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: pay, namespace: default}
            spec:
              hosts: [pay]
              http:
              - retries: {attempts: 3, retryRemoteLocalities: true}
                route: [{destination: {host: pay}}]
            """;

        var snapshot = Translate(ProxyIn("us-east", "zone-a"), vs);

        var routes = Assert.IsType<Envoy.Config.Route.V3.RouteConfiguration>(snapshot.Get(TypeUrls.RouteConfiguration)!.Resources[IstioNames.HttpProxyRoute].Message);
        var retry = routes.VirtualHosts.Single(h => h.Name == "pay.default.svc.cluster.local:8080").Routes.Single().Route_.RetryPolicy;
        Assert.Equal("envoy.retry_priorities.previous_priorities", retry.RetryPriority.Name);
        Assert.Equal("type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig", retry.RetryPriority.TypedConfig.TypeUrl);
        Assert.Equal(2, retry.RetryPriority.TypedConfig.Unpack<Envoy.Extensions.Retry.Priority.PreviousPriorities.V3.PreviousPrioritiesConfig>().UpdateFrequency);
        // The rest of the policy is unchanged: three retries on new hosts.
        Assert.Equal(3u, retry.NumRetries);
        Assert.Equal("envoy.retry_host_predicates.previous_hosts", retry.RetryHostPredicate.Single().Name);
    }

    [Theory]
    [InlineData("retries: {attempts: 3}")]
    [InlineData("retries: {attempts: 3, retryRemoteLocalities: false}")]
    [InlineData("timeout: 5s")]
    public void Translate_WithoutRetryRemoteLocalities_NoRetryPriority(string routeField)
    {
        var vs = $"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: pay, namespace: default}}\nspec:\n  hosts: [pay]\n  http:\n  - {routeField}\n    route: [{{destination: {{host: pay}}}}]\n";

        var snapshot = Translate(ProxyIn("us-east", "zone-a"), vs);

        var routes = Assert.IsType<Envoy.Config.Route.V3.RouteConfiguration>(snapshot.Get(TypeUrls.RouteConfiguration)!.Resources[IstioNames.HttpProxyRoute].Message);
        Assert.Null(routes.VirtualHosts.Single(h => h.Name == "pay.default.svc.cluster.local:8080").Routes.Single().Route_.RetryPolicy.RetryPriority);
    }

    [Fact]
    public void Translate_ProxyWithoutLocality_KeepsEveryLocalityAtPriorityZero()
    {
        var assignment = Assignment(ProxyNode.From(TestNodes.ProductpageSidecar()), Rule($"{{{Outlier}}}"));

        Assert.All(assignment.Endpoints, l => Assert.Equal(0u, l.Priority));
    }

    [Fact]
    public void Translate_LocalityWeight_IsTheSumOfItsEndpointsWeights()
    {
        var assignment = Assignment(ProxyIn("us-east", "zone-a"), null, ("pay-d", "10.0.0.4", "v1", "us-east/zone-a"));

        var zoneA = assignment.Endpoints.Single(l => l.Locality.Zone == "zone-a");
        Assert.Equal(2, zoneA.LbEndpoints.Count);
        Assert.Equal(2u, zoneA.LoadBalancingWeight);
    }

    [Fact]
    public void Translate_ServiceEntryEndpointLocality_IsItsLocality()
    {
        const string entry = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: api, namespace: default}
            spec:
              hosts: [api.example.com]
              location: MESH_INTERNAL
              resolution: STATIC
              ports: [{number: 80, name: http, protocol: HTTP}]
              endpoints:
              - {address: 10.1.0.1, locality: us-east/zone-a}
              - {address: 10.1.0.2, locality: us-west/zone-c}
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: api, namespace: default}
            spec:
              host: api.example.com
              trafficPolicy: {outlierDetection: {consecutive5xxErrors: 5}}
            """;
        var resources = TestFiles.ParseValid("api.yaml", entry);
        var snapshot = MeshTranslator.Translate(new ServiceIndex(new MeshConfig(resources, 1)), ProxyIn("us-east", "zone-a"));

        var assignment = Assert.IsType<ClusterLoadAssignment>(snapshot.Get(TypeUrls.ClusterLoadAssignment)!.Resources["outbound|80||api.example.com"].Message);
        Assert.Equal(["us-east/zone-a/=0:10.1.0.1", "us-west/zone-c/=1:10.1.0.2"], Priorities(assignment));
    }

    [Fact]
    public void Parse_WorkloadEntryLocalityLabel_IsItsLocalityWhenTheFieldIsEmpty()
    {
        var resources = TestFiles.ParseValid("we.yaml", """
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: pay-x, namespace: default}
            spec:
              address: 10.0.0.9
              labels: {app: pay, istio-locality: us-east.zone-a}
            """);

        Assert.Equal("us-east/zone-a", Assert.IsType<WorkloadEntry>(Assert.Single(resources)).Locality);
    }

    [Fact]
    public void Translate_FailoverPriorities_ApplyToProxylessGrpcClientsToo()
    {
        var node = TestNodes.ProxylessGrpc();
        node.Locality = new Envoy.Config.Core.V3.Locality { Region = "us-east", Zone = "zone-a" };

        var assignment = Assignment(ProxyNode.From(node), Rule($"{{{Outlier}}}"));

        Assert.Equal(["us-east/zone-a/=0:10.0.0.1", "us-east/zone-b/=1:10.0.0.2", "us-west/zone-c/=2:10.0.0.3"], Priorities(assignment));
        Assert.All(assignment.Endpoints, l => Assert.NotNull(l.LoadBalancingWeight));
    }
}
