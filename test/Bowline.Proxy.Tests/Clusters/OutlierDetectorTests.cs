using Bowline.Proxy.Clusters;
using Bowline.Proxy.Clusters.LoadBalancing;
using Bowline.Proxy.Clusters.Outlier;
using Bowline.Proxy.Stats;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Bowline.Proxy.Tests.Clusters;

/// <summary>Consecutive-error ejection on a paused clock: thresholds, the max-ejection cap, return after base × count.</summary>
public sealed class OutlierDetectorTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly ProxyStats _stats = new();

    private static OutlierDetectionConfig Config(int maxEjectionPercent = 100) =>
        new(Consecutive5xx: 3, Enforcing5xx: 100, ConsecutiveGatewayFailure: 5, EnforcingGatewayFailure: 0, ConsecutiveLocalOriginFailure: 5, EnforcingLocalOriginFailure: 100,
            SplitExternalLocalOriginErrors: false, Interval: TimeSpan.FromSeconds(10), BaseEjectionTime: TimeSpan.FromSeconds(30), MaxEjectionTime: TimeSpan.FromSeconds(300),
            MaxEjectionPercent: maxEjectionPercent);

    private (ClusterState Cluster, UpstreamEndpoint[] Hosts, OutlierDetector Detector) Create(int hosts, OutlierDetectionConfig config)
    {
        var cluster = new ClusterState("c", new ClusterStats(_stats, "c"));
        var endpoints = Enumerable.Range(1, hosts).Select(i => new UpstreamEndpoint($"10.0.0.{i}", 80)).ToArray();
        using var invoker = new UpstreamPool(new SocketsHttpHandler());
        var clusterConfig = new ClusterConfig(new Envoy.Config.Cluster.V3.Cluster { Name = "c" }, UpstreamProtocol.Http1, invoker, new RoundRobinBalancer(), CircuitBreakerLimits.Default, config, new HostSetPolicy(0));
        cluster.Publish(clusterConfig, new HostSet(null, [.. endpoints.Select(e => new WeightedEndpoint(e, 1, true))], 0, null));
        var detector = new OutlierDetector(cluster, config, _time, new Random(42), NullLogger.Instance);
        cluster.OutlierDetector = detector;
        return (cluster, endpoints, detector);
    }

    [Fact]
    public void ThreeConsecutive5xx_EjectTheHost_OthersStay()
    {
        var (cluster, hosts, detector) = Create(3, Config());

        detector.Report(hosts[0], UpstreamOutcome.ServerError);
        detector.Report(hosts[0], UpstreamOutcome.ServerError);
        Assert.Equal(3, cluster.Current!.Hosts.Available.Length);
        detector.Report(hosts[0], UpstreamOutcome.ServerError);

        Assert.True(hosts[0].Ejected);
        Assert.Equal([hosts[1], hosts[2]], cluster.Current!.Hosts.Available);
        Assert.Equal(1, _stats.ValueOf("cluster.c.outlier_detection.ejections_active"));
    }

    [Fact]
    public void ASuccessBetweenFailures_ResetsTheCount()
    {
        var (_, hosts, detector) = Create(2, Config());

        detector.Report(hosts[0], UpstreamOutcome.ServerError);
        detector.Report(hosts[0], UpstreamOutcome.ServerError);
        detector.Report(hosts[0], UpstreamOutcome.Success);
        detector.Report(hosts[0], UpstreamOutcome.ServerError);

        Assert.False(hosts[0].Ejected);
    }

    [Fact]
    public void EjectedHost_ReturnsAtTheSweepAfterBaseEjectionTime_AndTheNextEjectionLastsTwiceAsLong()
    {
        var (cluster, hosts, detector) = Create(2, Config());
        for (var i = 0; i < 3; i++)
        {
            detector.Report(hosts[0], UpstreamOutcome.GatewayError);
        }

        _time.Advance(TimeSpan.FromSeconds(20));
        Assert.True(hosts[0].Ejected);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.False(hosts[0].Ejected);
        Assert.Equal(2, cluster.Current!.Hosts.Available.Length);

        for (var i = 0; i < 3; i++)
        {
            detector.Report(hosts[0], UpstreamOutcome.ServerError);
        }
        _time.Advance(TimeSpan.FromSeconds(50));
        Assert.True(hosts[0].Ejected);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.False(hosts[0].Ejected);
    }

    [Fact]
    public void MaxEjectionPercent_CapsEjections_ButOneIsAlwaysAllowed()
    {
        var (cluster, hosts, detector) = Create(4, Config(maxEjectionPercent: 10));

        foreach (var host in hosts[..2])
        {
            for (var i = 0; i < 3; i++)
            {
                detector.Report(host, UpstreamOutcome.ServerError);
            }
        }

        Assert.True(hosts[0].Ejected);
        Assert.False(hosts[1].Ejected);
        Assert.Equal(3, cluster.Current!.Hosts.Available.Length);
        Assert.Equal(1, _stats.ValueOf("cluster.c.outlier_detection.ejections_overflow"));
    }

    [Fact]
    public void LocalOriginFailures_NotSplit_CountAs5xx()
    {
        var (_, hosts, detector) = Create(2, Config());

        for (var i = 0; i < 3; i++)
        {
            detector.Report(hosts[1], UpstreamOutcome.LocalOriginFailure);
        }

        Assert.True(hosts[1].Ejected);
    }
}
