using Bowline.Proxy.Clusters;
using Bowline.Proxy.Clusters.LoadBalancing;
using Bowline.Proxy.Tests.Infrastructure;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Time.Testing;
using static Bowline.Proxy.Tests.Infrastructure.EnvoyResources;

namespace Bowline.Proxy.Tests.Clusters;

/// <summary>Envoy's load distribution over a cluster's hosts: priority spill, locality weights, slow start, retries leaving a priority.</summary>
public sealed class HostSetLoadTests : IDisposable
{
    private readonly CompilerHarness _compiler = new();

    [Fact]
    public void Choose_HalfOfPriorityZeroDown_SpillsThirtyPercentToPriorityOne()
    {
        // Envoy: P0 health = 1.4 * 50% = 70%, so P1 takes the remaining 30%.
        var local = Hosts(2, priority: 0);
        local[1] = local[1] with { Healthy = false };
        var remote = Hosts(2, priority: 1, first: 10);
        var hosts = new HostSet(null, [.. local, .. remote], 50, null);

        var counts = Tally(hosts, new RoundRobinBalancer(), 10_000);

        Assert.Equal(7_000, counts[local[0].Endpoint]);
        Assert.Equal(3_000, counts[remote[0].Endpoint] + counts[remote[1].Endpoint]);
        Assert.False(hosts.Panic);
    }

    [Fact]
    public void Choose_ThreeOfFourUp_StaysOnPriorityZero()
    {
        var local = Hosts(4, priority: 0);
        local[3] = local[3] with { Healthy = false };
        var hosts = new HostSet(null, [.. local, .. Hosts(2, priority: 1, first: 10)], 50, null);

        var counts = Tally(hosts, new RoundRobinBalancer(), 3_000);

        Assert.Equal(3_000, counts.Where(kv => local.Any(l => l.Endpoint == kv.Key)).Sum(kv => kv.Value));
    }

    [Fact]
    public void Choose_EveryPriorityDegraded_PanicsOnlyWhereBelowTheThreshold()
    {
        // P0 1 of 4 up (health 35), P1 1 of 2 up (health 70): together 105, normalized: P0 gets 35%, P1 65%. The total is
        // at 100, so Envoy disregards the panic threshold.
        var local = Hosts(4, priority: 0).Select((h, i) => h with { Healthy = i == 0 }).ToList();
        var remote = Hosts(2, priority: 1, first: 10).Select((h, i) => h with { Healthy = i == 0 }).ToList();
        var hosts = new HostSet(null, [.. local, .. remote], 50, null);

        var counts = Tally(hosts, new RoundRobinBalancer(), 10_000);

        Assert.False(hosts.Panic);
        Assert.Equal(3_500, counts[local[0].Endpoint]);
        Assert.Equal(6_500, counts[remote[0].Endpoint]);
    }

    [Fact]
    public void Choose_LocalityWeighted_SplitsByLocalityWeightNotHostCount()
    {
        // 80/20 between two localities, though the second has three hosts to the first's one.
        var a = Hosts(1, locality: "us/a", localityWeight: 80);
        var b = Hosts(3, first: 10, locality: "us/b", localityWeight: 20);
        var hosts = new HostSet(null, [.. a, .. b], new HostSetPolicy(50, LocalityWeighted: true));

        var counts = Tally(hosts, new LeastRequestBalancer(new Random(7)), 10_000);

        Assert.Equal(8_000, counts[a[0].Endpoint]);
        Assert.Equal(2_000, b.Sum(h => counts[h.Endpoint]));
    }

    [Fact]
    public void Choose_LocalityWeightedWithoutWeight_TakesNoTraffic()
    {
        var a = Hosts(1, locality: "us/a", localityWeight: 1);
        var b = Hosts(1, first: 10, locality: "us/b", localityWeight: 0);
        var hosts = new HostSet(null, [.. a, .. b], new HostSetPolicy(50, LocalityWeighted: true));

        Assert.Equal([a[0].Endpoint], hosts.Available);
    }

    [Fact]
    public void Choose_LocalityHalfDown_LosesShareByItsAvailability()
    {
        // Locality a: weight 50, 1 of 2 up, availability min(1, 1.4 * 0.5) = 0.7 -> effective 35 against b's 50.
        var a = Hosts(2, locality: "us/a", localityWeight: 50);
        a[1] = a[1] with { Healthy = false };
        var b = Hosts(2, first: 10, locality: "us/b", localityWeight: 50);
        var hosts = new HostSet(null, [.. a, .. b], new HostSetPolicy(50, LocalityWeighted: true));

        var counts = Tally(hosts, new RoundRobinBalancer(), 8_500);

        Assert.Equal(3_500, counts[a[0].Endpoint]);
        Assert.Equal(5_000, b.Sum(h => counts[h.Endpoint]));
    }

    [Fact]
    public void Choose_ExcludingTheTriedLevel_GoesToTheNextPriority()
    {
        var local = Hosts(2, priority: 0);
        var remote = Hosts(1, priority: 1, first: 10);
        var hosts = new HostSet(null, [.. local, .. remote], 50, null);
        var balancer = new RoundRobinBalancer();

        Assert.Equal(0, hosts.LevelOf(local[1].Endpoint));
        Assert.Equal(1, hosts.LevelOf(remote[0].Endpoint));
        Assert.All(Enumerable.Range(0, 100), _ => Assert.Same(remote[0].Endpoint, balancer.Pick(hosts, null, 1, excludedLevels: 1)));
        // Every level tried: back to the normal load.
        Assert.All(Enumerable.Range(0, 100), _ => Assert.Contains(balancer.Pick(hosts, null, 1, excludedLevels: 3), local.Select(l => l.Endpoint)));
    }

    [Fact]
    public void SlowStart_NewHost_RampsFromMinWeightToFullOverTheWindow()
    {
        var time = new FakeTimeProvider();
        var slowStart = new SlowStart(TimeSpan.FromSeconds(100), 1.0, 0.1, time);
        var old = new UpstreamEndpoint("10.0.0.1", 9080) { JoinedAt = time.GetTimestamp() };
        time.Advance(TimeSpan.FromSeconds(1000));
        var fresh = new UpstreamEndpoint("10.0.0.2", 9080) { JoinedAt = time.GetTimestamp() };
        var policy = new HostSetPolicy(50, SlowStart: slowStart);
        WeightedEndpoint[] endpoints = [new(old, 1, true), new(fresh, 1, true)];

        var justJoined = new HostSet(null, endpoints, policy);
        time.Advance(TimeSpan.FromSeconds(50));
        var halfway = new HostSet(null, endpoints, policy);
        time.Advance(TimeSpan.FromSeconds(50));
        var warm = new HostSet(null, endpoints, policy);

        // 10% of its weight at first (the floor), 50% halfway, all of it after the window.
        Assert.Equal(10, justJoined.Available.Count(e => e == fresh) * 100 / justJoined.Available.Count(e => e == old));
        Assert.Equal(50, halfway.Available.Count(e => e == fresh) * 100 / halfway.Available.Count(e => e == old));
        Assert.Equal([old, fresh], warm.Available);
        Assert.Equal(TimeSpan.FromSeconds(5), justJoined.ReweighAfter);
        Assert.Null(warm.ReweighAfter);
    }

    [Fact]
    public void SlowStart_Aggression_BendsTheRamp()
    {
        var slowStart = new SlowStart(TimeSpan.FromSeconds(100), 2.0, 0.1, TimeProvider.System);

        Assert.Equal(Math.Sqrt(0.25), slowStart.Factor(TimeSpan.FromSeconds(25)), 6);
        Assert.Equal(0.1, slowStart.Factor(TimeSpan.Zero), 6);
        Assert.Equal(1.0, slowStart.Factor(TimeSpan.FromSeconds(100)), 6);
    }

    [Fact]
    public void Compile_RoundRobinSlowStartConfig_WarmsNewHostsOnATimer()
    {
        var cluster = EdsCluster(ReviewsCluster);
        cluster.RoundRobinLbConfig = new Cluster.Types.RoundRobinLbConfig
        {
            SlowStartConfig = new Cluster.Types.SlowStartConfig { SlowStartWindow = Duration.FromTimeSpan(TimeSpan.FromSeconds(60)) },
        };
        var snapshot = _compiler.Compile(cluster, Endpoints(ReviewsCluster, ("10.0.0.1", 9080, 1)));
        _compiler.Time.Advance(TimeSpan.FromSeconds(120));
        snapshot = _compiler.Compile(cluster, Endpoints(ReviewsCluster, ("10.0.0.1", 9080, 1), ("10.0.0.2", 9080, 1)));
        var state = snapshot.Clusters[ReviewsCluster];
        var fresh = state.Current!.Hosts.All[1].Endpoint;
        var before = Share(state.Current.Hosts, fresh);

        _compiler.Time.Advance(TimeSpan.FromSeconds(30));

        Assert.Equal(10, before);
        Assert.Equal(50, Share(state.Current!.Hosts, fresh));
        _compiler.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Null(state.Current!.Hosts.ReweighAfter);
    }

    [Fact]
    public void Compile_SlowStartOnAnotherPolicy_IsRefused()
    {
        var cluster = EdsCluster(ReviewsCluster, policy: Cluster.Types.LbPolicy.Random);
        cluster.LeastRequestLbConfig = new Cluster.Types.LeastRequestLbConfig
        {
            SlowStartConfig = new Cluster.Types.SlowStartConfig { SlowStartWindow = Duration.FromTimeSpan(TimeSpan.FromSeconds(60)) },
        };

        var error = Assert.Throws<Bowline.Proxy.Configuration.ProxyConfigException>(() => _compiler.Compile(cluster));

        Assert.Contains($"cluster {ReviewsCluster}", error.Message);
        Assert.Contains("slow_start_config", error.Message);
    }

    [Fact]
    public void Compile_LocalityWeightedCluster_ReadsLocalityWeightsFromEds()
    {
        var cluster = EdsCluster(ReviewsCluster);
        cluster.CommonLbConfig = new Cluster.Types.CommonLbConfig { LocalityWeightedLbConfig = new() };
        var assignment = new ClusterLoadAssignment
        {
            ClusterName = ReviewsCluster,
            Endpoints =
            {
                Locality("us-east", 90, "10.0.0.1"),
                Locality("us-west", 10, "10.0.1.1"),
            },
        };

        var snapshot = _compiler.Compile(cluster, assignment);

        var hosts = snapshot.Clusters[ReviewsCluster].Current!.Hosts;
        var counts = Tally(hosts, new RoundRobinBalancer(), 1_000);
        Assert.Equal(900, counts[hosts.All[0].Endpoint]);
        Assert.Equal(100, counts[hosts.All[1].Endpoint]);
    }

    public void Dispose() => _compiler.Dispose();

    /// <summary>A host's slots as a percentage of the other host's.</summary>
    private static int Share(HostSet hosts, UpstreamEndpoint host) => hosts.Available.Count(e => e == host) * 100 / hosts.Available.Count(e => e != host);

    private static LocalityLbEndpoints Locality(string region, uint weight, string ip) => new()
    {
        Locality = new Locality { Region = region },
        LoadBalancingWeight = weight,
        LbEndpoints = { new LbEndpoint { Endpoint = new Envoy.Config.Endpoint.V3.Endpoint { Address = SocketAddress(ip, 9080) } } },
    };

    private static List<WeightedEndpoint> Hosts(int count, int priority = 0, int first = 1, string locality = "", int localityWeight = 1) =>
        [.. Enumerable.Range(first, count).Select(i => new WeightedEndpoint(new UpstreamEndpoint($"10.0.0.{i}", 9080), 1, true, priority, locality, localityWeight))];

    private static Dictionary<UpstreamEndpoint, int> Tally(HostSet hosts, ILoadBalancer balancer, int picks)
    {
        var counts = hosts.All.ToDictionary(h => h.Endpoint, _ => 0);
        for (var i = 0; i < picks; i++)
        {
            counts[balancer.Pick(hosts, null, 0)!]++;
        }
        return counts;
    }
}
