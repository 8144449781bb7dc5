using Bowline.Proxy.Clusters;
using Bowline.Proxy.Clusters.LoadBalancing;

namespace Bowline.Proxy.Tests.Clusters.LoadBalancing;

public sealed class HashRingTests
{
    private static WeightedEndpoint[] Hosts(int count) => [.. Enumerable.Range(1, count).Select(i => new WeightedEndpoint(new UpstreamEndpoint($"10.0.0.{i}", 80), 1, true))];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Find_SameKey_SameHost_AndKeysSpreadOverAllHosts(bool maglev)
    {
        var hosts = Hosts(4);
        var ring = HashRing.Build(new HashRingKind(maglev, maglev ? 65537 : 1024, 8_388_608), hosts);

        var picks = Enumerable.Range(0, 10_000).Select(k => ring.Find(HashRing.Hash($"user-{k}"))).ToList();

        Assert.All(Enumerable.Range(0, 100), k => Assert.Same(picks[k], ring.Find(HashRing.Hash($"user-{k}"))));
        // Each host's share of 10,000 keys is near 2,500.
        Assert.All(hosts, h => Assert.InRange(picks.Count(p => p == h.Endpoint), 1500, 3500));
    }

    [Fact]
    public void Maglev_AddingAHost_MovesAboutItsShareOfKeys()
    {
        var four = Hosts(4);
        var five = four.Append(new WeightedEndpoint(new UpstreamEndpoint("10.0.0.5", 80), 1, true)).ToArray();
        var before = HashRing.Build(new HashRingKind(true, 65537, 65537), four);
        var after = HashRing.Build(new HashRingKind(true, 65537, 65537), five);

        var moved = Enumerable.Range(0, 10_000).Count(k => before.Find(HashRing.Hash($"k{k}")) != after.Find(HashRing.Hash($"k{k}")));

        // Ideal is 1/5 (2,000); Maglev trades a little extra movement for its lookup speed.
        Assert.InRange(moved, 1500, 3000);
    }

    [Fact]
    public void Ring_WeightedHost_GetsProportionallyMoreKeys()
    {
        var heavy = new WeightedEndpoint(new UpstreamEndpoint("10.0.0.1", 80), 3, true);
        var light = new WeightedEndpoint(new UpstreamEndpoint("10.0.0.2", 80), 1, true);
        var ring = HashRing.Build(new HashRingKind(false, 1024, 8_388_608), [heavy, light]);

        var toHeavy = Enumerable.Range(0, 10_000).Count(k => ring.Find(HashRing.Hash($"k{k}")) == heavy.Endpoint);

        Assert.InRange(toHeavy, 6500, 8500);
    }
}
