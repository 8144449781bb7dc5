using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using static Bowline.ControlPlane.Tests.Translation.LocalityMesh;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>
/// Istio's <c>localityLbSetting.distribute</c> (pilot's applyLocalityWeights): the first rule whose <c>from</c> matches
/// the proxy sets each LocalityLbEndpoints' <c>load_balancing_weight</c>, localities no <c>to</c> entry names get no
/// traffic, no failover priorities are set, and the cluster gets <c>common_lb_config.locality_weighted_lb_config</c>.
/// </summary>
public sealed class LocalityDistributeTranslationTests
{
    private static string Distribute(string rules, string extraPolicy = "") =>
        Rule($"{{{extraPolicy}loadBalancer: {{localityLbSetting: {{distribute: [{rules}]}}}}}}");

    [Fact]
    public void Translate_Distribute_SetsTheLocalityWeightsAndLeavesOutLocalitiesNoEntryNames()
    {
        var snapshot = Translate(ProxyIn("us-east", "zone-a"), Distribute("{from: us-east/zone-a/*, to: {us-east/zone-a: 80, us-west/*: 20}}"));

        var assignment = Endpoints(snapshot);
        Assert.Equal(["us-east/zone-a/=80", "us-west/zone-c/=20"], Weights(assignment));
        Assert.Equal(["us-east/zone-a/=0:10.0.0.1", "us-west/zone-c/=0:10.0.0.3"], Priorities(assignment));
        Assert.All(assignment.Endpoints.SelectMany(l => l.LbEndpoints), e => Assert.Equal(1u, e.LoadBalancingWeight));
        var common = Cluster(snapshot).CommonLbConfig;
        Assert.NotNull(common.LocalityWeightedLbConfig);
        Assert.Equal(Envoy.Config.Cluster.V3.Cluster.Types.CommonLbConfig.LocalityConfigSpecifierOneofCase.LocalityWeightedLbConfig, common.LocalityConfigSpecifierCase);
    }

    [Fact]
    public void Translate_WildcardEntry_SplitsItsWeightByTheLocalitiesOwnWeightsRoundedUp()
    {
        // zone-a has two endpoints and zone-b one: 70 × 2/3 = 46.7 → 47 and 70 × 1/3 = 23.3 → 24, as Istio rounds.
        var assignment = Assignment(
            ProxyIn("us-east", "zone-a"),
            Distribute("{from: us-east, to: {us-east/*: 70, us-west: 30}}"),
            ("pay-d", "10.0.0.4", "v1", "us-east/zone-a"));

        Assert.Equal(["us-east/zone-a/=47", "us-east/zone-b/=24", "us-west/zone-c/=30"], Weights(assignment));
        Assert.Equal(2, assignment.Endpoints[0].LbEndpoints.Count);
    }

    [Fact]
    public void Translate_SeveralRules_TheFirstWhoseFromMatchesTheProxyDecides()
    {
        var assignment = Assignment(
            ProxyIn("us-east", "zone-a"),
            Distribute("{from: us-west/*, to: {us-west/*: 100}}, {from: us-east/*, to: {us-east/zone-b: 100}}, {from: '*', to: {us-east/zone-a: 100}}"));

        Assert.Equal(["us-east/zone-b/=100"], Weights(assignment));
    }

    [Fact]
    public void Translate_OverlappingToEntries_ALocalityCountsForTheFirstItMatches()
    {
        // Istio walks a map here (its order is random); Bowline takes the entries in the order written.
        var assignment = Assignment(ProxyIn("us-east", "zone-a"), Distribute("{from: us-east, to: {us-east/zone-a: 60, us-east/*: 40}}"));

        Assert.Equal(["us-east/zone-a/=60", "us-east/zone-b/=40"], Weights(assignment));
    }

    [Theory]
    [InlineData("us-east", true)]
    [InlineData("us-east/*", true)]
    [InlineData("us-east/zone-a", true)]
    [InlineData("us-east/zone-a/*", true)]
    [InlineData("us-east/zone-a/rack-1", true)]
    [InlineData("'*'", true)]
    [InlineData("us-west", false)]
    [InlineData("us-east/zone-b", false)]
    [InlineData("us-east/zone-a/rack-2", false)]
    [InlineData("us-east/zone*", false)]
    public void Translate_From_MatchesTheProxysLocalityAsIstioDoes(string from, bool applies)
    {
        var assignment = Assignment(ProxyIn("us-east", "zone-a", "rack-1"), Distribute($"{{from: {from}, to: {{us-east/zone-b: 100}}}}"));

        string[] expected = applies ? ["us-east/zone-b/=100"] : ["us-east/zone-a/=1", "us-east/zone-b/=1", "us-west/zone-c/=1"];
        Assert.Equal(expected, Weights(assignment));
    }

    [Fact]
    public void Translate_NoRuleForTheProxy_KeepsEveryLocalityAndStillSetsLocalityWeightedLbConfig()
    {
        var snapshot = Translate(ProxyIn("eu-west", "zone-e"), Distribute("{from: us-east/*, to: {us-west/*: 100}}"));

        Assert.Equal(["us-east/zone-a/=1", "us-east/zone-b/=1", "us-west/zone-c/=1"], Weights(Endpoints(snapshot)));
        Assert.NotNull(Cluster(snapshot).CommonLbConfig.LocalityWeightedLbConfig);
    }

    [Fact]
    public void Translate_ProxyWithoutLocality_OnlyAWildcardFromMatchesIt()
    {
        var node = ProxyNode.From(TestNodes.ProductpageSidecar());

        Assert.Equal(["us-west/zone-c/=100"], Weights(Assignment(node, Distribute("{from: us-east, to: {us-east: 100}}, {from: '*', to: {us-west: 100}}"))));
    }

    [Fact]
    public void Translate_DistributeWithOutlierDetection_SetsNoFailoverPriorities()
    {
        var assignment = Assignment(ProxyIn("us-east", "zone-a"), Distribute("{from: us-east/*, to: {us-east/*: 50, us-west/*: 50}}", Outlier + ", "));

        Assert.Equal(["us-east/zone-a/=0:10.0.0.1", "us-east/zone-b/=0:10.0.0.2", "us-west/zone-c/=0:10.0.0.3"], Priorities(assignment));
        Assert.Equal(["us-east/zone-a/=25", "us-east/zone-b/=25", "us-west/zone-c/=50"], Weights(assignment));
    }

    [Fact]
    public void Translate_DistributeDisabled_LeavesWeightsAndClusterAlone()
    {
        var snapshot = Translate(ProxyIn("us-east", "zone-a"), Rule("{loadBalancer: {localityLbSetting: {enabled: false, distribute: [{from: us-east/*, to: {us-west/*: 100}}]}}}"));

        Assert.Equal(["us-east/zone-a/=1", "us-east/zone-b/=1", "us-west/zone-c/=1"], Weights(Endpoints(snapshot)));
        Assert.Null(Cluster(snapshot).CommonLbConfig?.LocalityWeightedLbConfig);
    }

    [Fact]
    public void Translate_ProxylessGrpcClient_GetsTheWeightsButNoLocalityWeightedLbConfig()
    {
        // gRPC clients always weigh localities (gRFC A27); Istio's gRPC generator does not set the cluster field.
        var node = TestNodes.ProxylessGrpc();
        node.Locality = new Envoy.Config.Core.V3.Locality { Region = "us-east", Zone = "zone-a" };

        var snapshot = Translate(ProxyNode.From(node), Distribute("{from: us-east/*, to: {us-east/zone-a: 90, us-west/*: 10}}"));

        Assert.Equal(["us-east/zone-a/=90", "us-west/zone-c/=10"], Weights(Endpoints(snapshot)));
        Assert.Null(Cluster(snapshot).CommonLbConfig?.LocalityWeightedLbConfig);
    }
}
