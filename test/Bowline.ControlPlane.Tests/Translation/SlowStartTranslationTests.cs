using Bowline.ControlPlane.Snapshots;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Cluster.V3;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>
/// Istio's <c>loadBalancer.warmupDurationSecs</c> (cluster_traffic_policy.go's setSlowStartConfig): the slow start
/// window of ROUND_ROBIN's or LEAST_REQUEST's lb config, and nothing else (no aggression, no min_weight_percent).
/// </summary>
public sealed class SlowStartTranslationTests
{
    private const string ReviewsCluster = "outbound|9080||reviews.default.svc.cluster.local";

    /// <summary>A DestinationRule for reviews that replaces the sample's (it sorts first).</summary>
    private static string ReviewsRule(string loadBalancer) =>
        $"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: a-reviews}}\nspec:\n  host: reviews\n  trafficPolicy: {{loadBalancer: {loadBalancer}}}\n";

    private static XdsSnapshot Translate(string loadBalancer, ProxyNode? node = null) =>
        MeshTranslator.Translate(Bookinfo.Index(ReviewsRule(loadBalancer)), node ?? ProxyNode.From(TestNodes.ProductpageSidecar()));

    private static Cluster Reviews(XdsSnapshot snapshot) =>
        Assert.IsType<Cluster>(snapshot.Get(TypeUrls.Cluster)!.Resources[ReviewsCluster].Message);

    [Fact]
    public void Translate_RoundRobinWithWarmup_IsTheRoundRobinSlowStartWindow()
    {
        var cluster = Reviews(Translate("{simple: ROUND_ROBIN, warmupDurationSecs: 45s}"));

        Assert.Equal(Cluster.Types.LbPolicy.RoundRobin, cluster.LbPolicy);
        Assert.Equal(Cluster.LbConfigOneofCase.RoundRobinLbConfig, cluster.LbConfigCase);
        var slowStart = cluster.RoundRobinLbConfig.SlowStartConfig;
        Assert.Equal(TimeSpan.FromSeconds(45), slowStart.SlowStartWindow.ToTimeSpan());
        // Istio leaves these to Envoy's defaults (aggression 1.0, min weight 10%) for warmupDurationSecs.
        Assert.Null(slowStart.Aggression);
        Assert.Null(slowStart.MinWeightPercent);
    }

    [Theory]
    [InlineData("{simple: LEAST_REQUEST, warmupDurationSecs: 10s}")]
    [InlineData("{simple: LEAST_CONN, warmupDurationSecs: 10s}")]
    [InlineData("{warmupDurationSecs: 10s}")]
    [InlineData("{simple: UNSPECIFIED, warmupDurationSecs: 10s}")]
    public void Translate_LeastRequestWithWarmup_IsTheLeastRequestSlowStartWindow(string loadBalancer)
    {
        var cluster = Reviews(Translate(loadBalancer));

        Assert.Equal(Cluster.Types.LbPolicy.LeastRequest, cluster.LbPolicy);
        Assert.Equal(Cluster.LbConfigOneofCase.LeastRequestLbConfig, cluster.LbConfigCase);
        var config = cluster.LeastRequestLbConfig;
        Assert.Equal(TimeSpan.FromSeconds(10), config.SlowStartConfig.SlowStartWindow.ToTimeSpan());
        Assert.Null(config.SlowStartConfig.Aggression);
        Assert.Null(config.SlowStartConfig.MinWeightPercent);
        Assert.Null(config.ChoiceCount);
        Assert.Null(config.ActiveRequestBias);
    }

    [Fact]
    public void Translate_SubMillisecondWindow_IsKeptExactly()
    {
        var cluster = Reviews(Translate("{simple: ROUND_ROBIN, warmupDurationSecs: 1.5s}"));

        Assert.Equal(new Google.Protobuf.WellKnownTypes.Duration { Seconds = 1, Nanos = 500_000_000 }, cluster.RoundRobinLbConfig.SlowStartConfig.SlowStartWindow);
    }

    [Theory]
    [InlineData("{simple: RANDOM, warmupDurationSecs: 10s}", "RANDOM")]
    [InlineData("{simple: PASSTHROUGH, warmupDurationSecs: 10s}", "PASSTHROUGH")]
    [InlineData("{consistentHash: {httpHeaderName: x-user}, warmupDurationSecs: 10s}", "consistentHash")]
    [InlineData("{consistentHash: {httpHeaderName: x-user, ringHash: {}}, warmupDurationSecs: 10s}", "consistentHash")]
    public void Translate_WarmupWithAPolicyWithoutSlowStart_IsDroppedAsInIstioWithAWarning(string loadBalancer, string policy)
    {
        var snapshot = Translate(loadBalancer);

        var cluster = Reviews(snapshot);
        Assert.Null(cluster.RoundRobinLbConfig);
        Assert.Null(cluster.LeastRequestLbConfig);
        Assert.Contains(snapshot.Warnings, w => w.Contains("warmupDurationSecs", StringComparison.Ordinal) && w.Contains(policy, StringComparison.Ordinal) && w.Contains(ReviewsCluster, StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_NoWarmup_NoLbConfig()
    {
        var cluster = Reviews(Translate("{simple: ROUND_ROBIN}"));

        Assert.Equal(Cluster.LbConfigOneofCase.None, cluster.LbConfigCase);
    }

    [Fact]
    public void Translate_WarmupAndWarmupDurationSecs_IstioUsesWarmupSoTheDurationIsNotApplied()
    {
        var cluster = Reviews(Translate("{simple: ROUND_ROBIN, warmupDurationSecs: 10s, warmup: {duration: 20s}}"));

        Assert.Equal(Cluster.LbConfigOneofCase.None, cluster.LbConfigCase);
    }

    [Fact]
    public void Translate_ProxylessGrpcClient_HasNoSlowStartAndIsWarned()
    {
        var snapshot = Translate("{simple: ROUND_ROBIN, warmupDurationSecs: 10s}", ProxyNode.From(TestNodes.ProxylessGrpc()));

        Assert.Equal(Cluster.LbConfigOneofCase.None, Reviews(snapshot).LbConfigCase);
        Assert.Contains(snapshot.Warnings, w => w.Contains("slow start", StringComparison.Ordinal) && w.Contains("proxyless", StringComparison.Ordinal));
    }
}
