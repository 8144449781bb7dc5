using Bowline.Proxy.Clusters;
using Bowline.Proxy.Clusters.LoadBalancing;

namespace Bowline.Proxy.Tests.Clusters.LoadBalancing;

public sealed class RandomBalancerTests
{
    [Fact]
    public void Pick_SeededRandom_SpreadsUniformly()
    {
        var endpoints = Endpoints.Create(4);
        var balancer = new RandomBalancer(new Random(42));

        var counts = Endpoints.Tally(endpoints, () => balancer.Pick(Endpoints.Set(endpoints), null, 0), 40_000);

        Assert.All(counts, c => Assert.InRange(c, 9_500, 10_500));
    }

    [Fact]
    public void Pick_SameSeed_SameSequence()
    {
        var endpoints = Endpoints.Create(5);
        var first = new RandomBalancer(new Random(42));
        var second = new RandomBalancer(new Random(42));

        Assert.Equal(
            Enumerable.Range(0, 100).Select(_ => first.Pick(Endpoints.Set(endpoints), null, 0)),
            Enumerable.Range(0, 100).Select(_ => second.Pick(Endpoints.Set(endpoints), null, 0)));
    }

    [Fact]
    public void Pick_NoEndpoints_ReturnsNull()
    {
        Assert.Null(new RandomBalancer(new Random(42)).Pick(HostSet.Empty, null, 0));
    }
}
