using Bowline.Proxy.Clusters.LoadBalancing;
using Bowline.Proxy.Configuration;
using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;

namespace Bowline.Proxy.Tests.Clusters.LoadBalancing;

public sealed class LoadBalancersTests
{
    [Theory]
    [InlineData(LbPolicy.RoundRobin, LoadBalancers.RoundRobin)]
    [InlineData(LbPolicy.LeastRequest, LoadBalancers.LeastRequest)]
    [InlineData(LbPolicy.Random, LoadBalancers.Random)]
    public void Create_SupportedPolicy_ReturnsBalancerWithEnvoyName(LbPolicy policy, string expected)
    {
        Assert.Equal(expected, LoadBalancers.Create(policy, new Random(42), "c").Name);
    }

    [Fact]
    public void Create_RingHash_ThrowsNamingThePolicy()
    {
        var error = Assert.Throws<ProxyConfigException>(() => LoadBalancers.Create(LbPolicy.RingHash, new Random(42), "c"));

        Assert.Contains("lb_policy", error.Message, StringComparison.Ordinal);
    }
}
