using Bowline.Proxy.Configuration;
using Bowline.Proxy.Tests.Infrastructure;
using static Bowline.Proxy.Tests.Infrastructure.EnvoyResources;

namespace Bowline.Proxy.Tests.Routing;

/// <summary>Weighted cluster picks (traffic splitting), with a seeded <see cref="Random"/> so every run sees the same rolls.</summary>
public sealed class RouteEntryPickTests : IDisposable
{
    private const string V1 = "outbound|9080|v1|reviews.default.svc.cluster.local";
    private const string V2 = "outbound|9080|v2|reviews.default.svc.cluster.local";
    private const string V3 = "outbound|9080|v3|reviews.default.svc.cluster.local";

    private readonly CompilerHarness _compiler = new();

    [Fact]
    public void Pick_EightyTwentySplit_LandsWithinOnePointOfTheWeights()
    {
        var route = _compiler.CompileRoute(WeightedRoute("canary", Prefix("/"), (V1, 80), (V2, 20)));
        var random = new Random(42);

        const int picks = 100_000;
        var toV1 = Enumerable.Range(0, picks).Count(_ => route.Pick(random).ClusterName == V1);

        Assert.InRange(toV1 * 100.0 / picks, 79.0, 81.0);
    }

    [Fact]
    public void Pick_Weights1000To1_AreProportionsNotSlots()
    {
        var route = _compiler.CompileRoute(WeightedRoute("rare", Prefix("/"), (V1, 1000), (V2, 1)));
        var random = new Random(42);

        const int picks = 1_001_000;
        var toV2 = Enumerable.Range(0, picks).Count(_ => route.Pick(random).ClusterName == V2);

        // Expected 1,000; the binomial sd is 31.6, so ±200 is more than six of them.
        Assert.InRange(toV2, 800, 1200);
    }

    [Fact]
    public void Pick_ZeroWeightCluster_IsNeverPicked()
    {
        var route = _compiler.CompileRoute(WeightedRoute("drain-v2", Prefix("/"), (V1, 50), (V2, 0), (V3, 50)));
        var random = new Random(42);

        var picked = Enumerable.Range(0, 10_000).Select(_ => route.Pick(random).ClusterName).ToHashSet();

        Assert.Equal([V1, V3], picked.Order(StringComparer.Ordinal));
        Assert.DoesNotContain(route.Targets, t => t.ClusterName == V2);
    }

    [Fact]
    public void Pick_SingleCluster_AlwaysPickedWithoutRollingTheDice()
    {
        var route = _compiler.CompileRoute(ClusterRoute("all", Prefix("/"), V1));

        // ThrowingRandom fails the test if Pick consults it: one target needs no roll.
        Assert.All(Enumerable.Range(0, 100), _ => Assert.Equal(V1, route.Pick(new ThrowingRandom()).ClusterName));
    }

    [Fact]
    public void Pick_SingleWeightedClusterAmongZeros_AlwaysPicked()
    {
        var route = _compiler.CompileRoute(WeightedRoute("shift", Prefix("/"), (V1, 0), (V2, 7), (V3, 0)));

        Assert.Equal(V2, route.Pick(new ThrowingRandom()).ClusterName);
    }

    [Fact]
    public void Pick_SameSeed_SameSequence()
    {
        var route = _compiler.CompileRoute(WeightedRoute("thirds", Prefix("/"), (V1, 1), (V2, 1), (V3, 1)));
        var first = new Random(42);
        var second = new Random(42);

        var a = Enumerable.Range(0, 1_000).Select(_ => route.Pick(first).ClusterName).ToList();
        var b = Enumerable.Range(0, 1_000).Select(_ => route.Pick(second).ClusterName).ToList();

        Assert.Equal(a, b);
    }

    [Fact]
    public void Pick_ClusterNotInCds_TargetHasNoCluster()
    {
        // The handler answers 503 NC for such a target, as Envoy does.
        var route = _compiler.CompileRoute(ClusterRoute("all", Prefix("/"), V1), EdsCluster(V2));

        Assert.Null(route.Pick(new Random(42)).Cluster.Current);
    }

    [Fact]
    public void Pick_ClusterInCds_TargetCarriesThatCluster()
    {
        var route = _compiler.CompileRoute(WeightedRoute("split", Prefix("/"), (V1, 50), (V2, 50)), EdsCluster(V1), EdsCluster(V2));

        Assert.All(route.Targets, t => Assert.NotNull(t.Cluster.Current));
    }

    [Fact]
    public void Compile_EveryWeightZero_IsRejectedNamingTheRoute()
    {
        var error = Assert.Throws<ProxyConfigException>(() => _compiler.CompileRoute(WeightedRoute("nowhere", Prefix("/"), (V1, 0), (V2, 0))));

        Assert.Contains("route nowhere", error.Message, StringComparison.Ordinal);
        Assert.Contains("weighted_clusters", error.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _compiler.Dispose();
}
