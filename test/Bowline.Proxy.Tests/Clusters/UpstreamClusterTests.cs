using Bowline.Proxy.Clusters;
using Bowline.Proxy.Clusters.LoadBalancing;
using Bowline.Proxy.Stats;

namespace Bowline.Proxy.Tests.Clusters;

public sealed class UpstreamClusterTests : IDisposable
{
    private readonly HttpMessageInvoker _invoker = new(new SocketsHttpHandler());

    [Fact]
    public void PickEndpoint_Weights3And1WithRoundRobin_Splits75To25()
    {
        var heavy = new UpstreamEndpoint("10.0.0.1", 9080);
        var light = new UpstreamEndpoint("10.0.0.2", 9080);
        var cluster = Create(new RoundRobinBalancer(), new(heavy, 3, true), new(light, 1, true));

        var picks = Enumerable.Range(0, 4000).Select(_ => cluster.PickEndpoint()).ToList();

        Assert.Equal(3000, picks.Count(e => e == heavy));
        Assert.Equal(1000, picks.Count(e => e == light));
    }

    [Fact]
    public void Healthy_WeightsShareADivisor_ExpandedByTheReducedWeights()
    {
        var a = new UpstreamEndpoint("10.0.0.1", 9080);
        var b = new UpstreamEndpoint("10.0.0.2", 9080);

        var cluster = Create(new RoundRobinBalancer(), new(a, 20, true), new(b, 40, true));

        Assert.Equal(1, cluster.Healthy.Count(e => e == a));
        Assert.Equal(2, cluster.Healthy.Count(e => e == b));
    }

    [Fact]
    public void Healthy_UnhealthyEndpoint_IsLeftOut()
    {
        var up = new UpstreamEndpoint("10.0.0.1", 9080);
        var down = new UpstreamEndpoint("10.0.0.2", 9080);

        var cluster = Create(new RoundRobinBalancer(), new(up, 1, true), new(down, 1, false));

        Assert.Equal([up], cluster.Healthy);
        Assert.Equal(2, cluster.Endpoints.Count);
    }

    [Fact]
    public void PickEndpoint_NoHealthyEndpoint_ReturnsNull()
    {
        var cluster = Create(new LeastRequestBalancer(new Random(42)), new WeightedEndpoint(new UpstreamEndpoint("10.0.0.1", 9080), 1, false));

        Assert.Null(cluster.PickEndpoint());
    }

    [Fact]
    public void PickEndpoint_NoEndpointsAtAll_ReturnsNull()
    {
        Assert.Null(Create(new RoundRobinBalancer()).PickEndpoint());
    }

    public void Dispose() => _invoker.Dispose();

    private UpstreamCluster Create(ILoadBalancer balancer, params WeightedEndpoint[] endpoints) =>
        new("outbound|9080||reviews.default.svc.cluster.local", UpstreamProtocol.Http1, balancer, endpoints, _invoker, new ClusterStats(new ProxyStats(), "reviews"));
}
