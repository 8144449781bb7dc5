using Bowline.Proxy.Clusters;
using Bowline.Proxy.Clusters.LoadBalancing;
using Bowline.Proxy.Tests.Infrastructure;

namespace Bowline.Proxy.Tests.Clusters.LoadBalancing;

public sealed class LeastRequestBalancerTests
{
    [Fact]
    public void Pick_TwoEndpoints_PrefersTheOneWithFewerActiveRequests()
    {
        var endpoints = Endpoints.Create(2);
        endpoints[0].RequestStarted();
        endpoints[0].RequestStarted();
        endpoints[1].RequestStarted();
        var balancer = new LeastRequestBalancer(new Random(42));

        Assert.All(Enumerable.Range(0, 100), _ => Assert.Same(endpoints[1], balancer.Pick(Endpoints.Set(endpoints), null, 0)));
    }

    [Fact]
    public void Pick_OneSlowEndpointAmongFour_NeverPicksIt()
    {
        // Power of two choices compares two distinct endpoints, so the busiest one always loses.
        var endpoints = Endpoints.Create(4);
        for (var i = 0; i < 10; i++)
        {
            endpoints[2].RequestStarted();
        }
        var balancer = new LeastRequestBalancer(new Random(42));

        var counts = Endpoints.Tally(endpoints, () => balancer.Pick(Endpoints.Set(endpoints), null, 0), 4000);

        Assert.Equal(0, counts[2]);
    }

    [Fact]
    public void Pick_RequestsEnd_EndpointIsPickedAgain()
    {
        var endpoints = Endpoints.Create(2);
        endpoints[0].RequestStarted();
        var balancer = new LeastRequestBalancer(new Random(42));
        Assert.Same(endpoints[1], balancer.Pick(Endpoints.Set(endpoints), null, 0));

        endpoints[0].RequestEnded();
        endpoints[1].RequestStarted();

        Assert.Same(endpoints[0], balancer.Pick(Endpoints.Set(endpoints), null, 0));
    }

    [Fact]
    public void Pick_AllIdle_SpreadsAcrossEveryEndpoint()
    {
        var endpoints = Endpoints.Create(4);
        var balancer = new LeastRequestBalancer(new Random(42));

        var counts = Endpoints.Tally(endpoints, () => balancer.Pick(Endpoints.Set(endpoints), null, 0), 40_000);

        Assert.All(counts, c => Assert.InRange(c, 9_000, 11_000));
    }

    [Fact]
    public void Pick_SingleEndpoint_ReturnsItEvenWhenBusy()
    {
        var endpoints = Endpoints.Create(1);
        endpoints[0].RequestStarted();

        Assert.Same(endpoints[0], new LeastRequestBalancer(new ThrowingRandom()).Pick(Endpoints.Set(endpoints), null, 0));
    }

    [Fact]
    public void Pick_NoEndpoints_ReturnsNull()
    {
        Assert.Null(new LeastRequestBalancer(new Random(42)).Pick(HostSet.Empty, null, 0));
    }
}
