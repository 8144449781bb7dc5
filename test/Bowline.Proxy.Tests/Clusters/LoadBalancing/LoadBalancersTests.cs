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
        Assert.Equal(expected, LoadBalancers.Create(new Envoy.Config.Cluster.V3.Cluster { Name = "c", LbPolicy = policy }, new Random(42)).Name);
    }

    [Fact]
    public void Create_ClusterProvided_ThrowsNamingThePolicy()
    {
        var error = Assert.Throws<ProxyConfigException>(() => LoadBalancers.Create(new Envoy.Config.Cluster.V3.Cluster { Name = "c", LbPolicy = LbPolicy.ClusterProvided }, new Random(42)));

        Assert.Contains("lb_policy", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_MaglevTableSizeNotPrime_ThrowsNamingTheField()
    {
        var cluster = new Envoy.Config.Cluster.V3.Cluster { Name = "c", LbPolicy = LbPolicy.Maglev, MaglevLbConfig = new() { TableSize = 1000 } };

        var error = Assert.Throws<ProxyConfigException>(() => LoadBalancers.Create(cluster, new Random(42)));

        Assert.Contains("table_size", error.Message, StringComparison.Ordinal);
    }
}
