using Bowline.Proxy.Clusters;
using Bowline.Proxy.Clusters.LoadBalancing;

namespace Bowline.Proxy.Tests.Clusters.LoadBalancing;

public sealed class RoundRobinBalancerTests
{
    [Fact]
    public void Pick_ThreeEndpoints_CyclesThroughEachInTurn()
    {
        var endpoints = Endpoints.Create(3);
        var balancer = new RoundRobinBalancer();

        var picks = Enumerable.Range(0, 9).Select(_ => balancer.Pick(Endpoints.Set(endpoints), null, 0)).ToList();

        // Each window of three holds every endpoint once, and the order repeats.
        for (var i = 0; i < picks.Count; i += 3)
        {
            Assert.Equal(3, picks.Skip(i).Take(3).Distinct().Count());
        }
        Assert.Equal(picks.Take(3), picks.Skip(3).Take(3));
    }

    [Fact]
    public void Pick_ManyRequests_SpreadsExactlyEvenly()
    {
        var endpoints = Endpoints.Create(3);
        var balancer = new RoundRobinBalancer();

        Assert.Equal([1000, 1000, 1000], Endpoints.Tally(endpoints, () => balancer.Pick(Endpoints.Set(endpoints), null, 0), 3000));
    }

    [Fact]
    public void Pick_NoEndpoints_ReturnsNull()
    {
        Assert.Null(new RoundRobinBalancer().Pick(HostSet.Empty, null, 0));
    }

    [Fact]
    public void Pick_EndpointSetShrinksBetweenPicks_StaysInRange()
    {
        // The balancer outlives config pushes; its counter must fit whatever endpoint set comes next.
        var balancer = new RoundRobinBalancer();
        var three = Endpoints.Create(3);
        var one = Endpoints.Create(1);

        balancer.Pick(Endpoints.Set(three), null, 0);
        balancer.Pick(Endpoints.Set(three), null, 0);

        Assert.Same(one[0], balancer.Pick(Endpoints.Set(one), null, 0));
    }
}
