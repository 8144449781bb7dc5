using Bowline.Proxy.Clusters;
using Bowline.Proxy.Clusters.LoadBalancing;

namespace Bowline.Proxy.Tests.Clusters;

public sealed class HostSetTests
{
    [Fact]
    public void Pick_Weights3And1WithRoundRobin_Splits75To25()
    {
        var heavy = new UpstreamEndpoint("10.0.0.1", 9080);
        var light = new UpstreamEndpoint("10.0.0.2", 9080);
        var hosts = Create(new(heavy, 3, true), new(light, 1, true));
        var balancer = new RoundRobinBalancer();

        var picks = Enumerable.Range(0, 4000).Select(_ => balancer.Pick(hosts, null, 0)).ToList();

        Assert.Equal(3000, picks.Count(e => e == heavy));
        Assert.Equal(1000, picks.Count(e => e == light));
    }

    [Fact]
    public void Available_WeightsShareADivisor_ExpandedByTheReducedWeights()
    {
        var a = new UpstreamEndpoint("10.0.0.1", 9080);
        var b = new UpstreamEndpoint("10.0.0.2", 9080);

        var hosts = Create(new(a, 20, true), new(b, 40, true));

        Assert.Equal(1, hosts.Available.Count(e => e == a));
        Assert.Equal(2, hosts.Available.Count(e => e == b));
    }

    [Fact]
    public void Available_UnhealthyEndpoint_IsLeftOut()
    {
        var up = new UpstreamEndpoint("10.0.0.1", 9080);
        var down = new UpstreamEndpoint("10.0.0.2", 9080);

        var hosts = Create(new(up, 1, true), new(down, 1, false));

        Assert.Equal([up], hosts.Available);
        Assert.Equal(2, hosts.All.Count);
        Assert.False(hosts.Panic);
    }

    [Fact]
    public void Available_EjectedHost_IsLeftOut()
    {
        var up = new UpstreamEndpoint("10.0.0.1", 9080);
        var ejected = new UpstreamEndpoint("10.0.0.2", 9080) { Ejected = true };
        var third = new UpstreamEndpoint("10.0.0.3", 9080);

        var hosts = Create(new(up, 1, true), new(ejected, 1, true), new(third, 1, true));

        Assert.Equal([up, third], hosts.Available);
    }

    [Fact]
    public void Available_BelowPanicThreshold_BalancesOverAllHosts()
    {
        var up = new UpstreamEndpoint("10.0.0.1", 9080);
        var down1 = new UpstreamEndpoint("10.0.0.2", 9080);
        var down2 = new UpstreamEndpoint("10.0.0.3", 9080);

        var hosts = Create(new(up, 1, true), new(down1, 1, false), new(down2, 1, false));

        Assert.True(hosts.Panic);
        Assert.Equal(3, hosts.Available.Length);
    }

    [Fact]
    public void Available_PanicThresholdZero_NeverPanics()
    {
        var up = new UpstreamEndpoint("10.0.0.1", 9080);
        var down = new UpstreamEndpoint("10.0.0.2", 9080);

        var hosts = new HostSet(null, [new(up, 1, true), new(down, 1, false), new(new UpstreamEndpoint("10.0.0.3", 9080), 1, false)], 0, null);

        Assert.False(hosts.Panic);
        Assert.Equal([up], hosts.Available);
    }

    [Fact]
    public void Available_LowestPriorityAllDown_FailsOverToTheNextPriority()
    {
        var local = new UpstreamEndpoint("10.0.0.1", 9080) { Ejected = true };
        var remote = new UpstreamEndpoint("10.0.1.1", 9080);

        var hosts = Create(new(local, 1, true, Priority: 0), new(remote, 1, true, Priority: 1));

        Assert.Equal([remote], hosts.Available);
    }

    [Fact]
    public void Pick_NoAvailableHost_ReturnsNull()
    {
        var hosts = new HostSet(null, [new WeightedEndpoint(new UpstreamEndpoint("10.0.0.1", 9080), 1, false)], 0, null);

        Assert.Null(new LeastRequestBalancer(new Random(42)).Pick(hosts, null, 0));
        Assert.Null(new RoundRobinBalancer().Pick(HostSet.Empty, null, 0));
    }

    private static HostSet Create(params WeightedEndpoint[] endpoints) => new(null, endpoints, 50, null);
}
