using Bowline.Proxy.Clusters;
using Microsoft.Extensions.Time.Testing;
using LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy;

namespace Bowline.Proxy.Tests.Clusters;

/// <summary>State that must survive config pushes: endpoints (active request counts), balancers (round-robin position), pools (connections).</summary>
public sealed class ConnectionPoolsTests : IDisposable
{
    private const string Reviews = "outbound|9080||reviews.default.svc.cluster.local";

    private readonly FakeTimeProvider _time = new();
    private readonly ConnectionPools _pools;

    public ConnectionPoolsTests() => _pools = new ConnectionPools(_time, new Random(42), new Bowline.Proxy.Tls.SecretStore());

    [Fact]
    public void Endpoint_SameClusterAddressAndPort_ReturnsTheSameInstance()
    {
        var first = _pools.Endpoint(Reviews, "10.0.0.1", 9080);
        first.RequestStarted();

        var again = _pools.Endpoint(Reviews, "10.0.0.1", 9080);

        Assert.Same(first, again);
        Assert.Equal(1, again.ActiveRequests);
        Assert.NotSame(first, _pools.Endpoint("other", "10.0.0.1", 9080));
    }

    [Fact]
    public void Label_AnEndpointTheLiveSnapshotUses_ChangesOnlyWhenTheUpdateIsCommitted()
    {
        var reviews = Bowline.Proxy.Telemetry.WorkloadMetadata.FromEndpoint("reviews-v1;default;reviews;v1;Kubernetes");
        var host = _pools.Endpoint(Reviews, "10.0.0.1", 9080);
        _pools.Commit();

        _pools.Label(host, reviews);
        var whileCompiling = host.Workload;
        _pools.Rollback();
        var afterRejection = host.Workload;
        _pools.Label(host, reviews);
        _pools.Commit();

        Assert.Null(whileCompiling);
        Assert.Null(afterRejection);
        Assert.Same(reviews, host.Workload);
    }

    [Fact]
    public void Label_AnEndpointTheUpdateAdds_AppliesAtOnce()
    {
        var reviews = Bowline.Proxy.Telemetry.WorkloadMetadata.FromEndpoint("reviews-v2;default;reviews;v2;Kubernetes");
        var host = _pools.Endpoint(Reviews, "10.0.0.2", 9080);

        _pools.Label(host, reviews);

        Assert.Same(reviews, host.Workload);
    }

    [Fact]
    public void Balancer_SamePolicy_KeepsTheInstance()
    {
        var first = _pools.Balancer(new Envoy.Config.Cluster.V3.Cluster { Name = Reviews, LbPolicy = LbPolicy.RoundRobin });

        Assert.Same(first, _pools.Balancer(new Envoy.Config.Cluster.V3.Cluster { Name = Reviews, LbPolicy = LbPolicy.RoundRobin }));
        Assert.NotSame(first, _pools.Balancer(new Envoy.Config.Cluster.V3.Cluster { Name = Reviews, LbPolicy = LbPolicy.LeastRequest }));
    }

    [Fact]
    public void Invoker_SettingsChange_ReplacesThePool()
    {
        var first = _pools.Invoker(Reviews, Settings(5));

        Assert.Same(first, _pools.Invoker(Reviews, Settings(5)));
        Assert.NotSame(first, _pools.Invoker(Reviews, Settings(5) with { MaxConnectionsPerHost = 1 }));
    }

    [Fact]
    public async Task Prune_RemovedIdleCluster_ClosesItsPoolAfterTheGracePeriod()
    {
        var invoker = _pools.Invoker(Reviews, Settings(5));
        _pools.Commit();

        _pools.Prune(new HashSet<string>(), new HashSet<(string, string, int)>());
        _pools.Commit();
        _time.Advance(TimeSpan.FromSeconds(4));
        // Still usable by a request that read the previous snapshot: fails to connect, but is not disposed.
        var inGrace = await Record.ExceptionAsync(() => SendAsync(invoker));
        _time.Advance(TimeSpan.FromSeconds(1));
        var afterGrace = await Record.ExceptionAsync(() => SendAsync(invoker));

        Assert.IsNotType<ObjectDisposedException>(inGrace);
        Assert.IsType<ObjectDisposedException>(afterGrace);
    }

    [Fact]
    public async Task Prune_RemovedClusterWithARequestInFlight_DrainsUntilTheRequestEnds()
    {
        var pool = _pools.Invoker(Reviews, Settings(5));
        _pools.Commit();
        pool.Enter();

        _pools.Prune(new HashSet<string>(), new HashSet<(string, string, int)>());
        _pools.Commit();
        _time.Advance(TimeSpan.FromHours(1));
        var whileInFlight = await Record.ExceptionAsync(() => SendAsync(pool));
        pool.Exit();

        Assert.IsNotType<ObjectDisposedException>(whileInFlight);
        Assert.True(pool.IsClosed);
        Assert.IsType<ObjectDisposedException>(await Record.ExceptionAsync(() => SendAsync(pool)));
    }

    [Fact]
    public async Task Rollback_AfterAReplacedPool_KeepsTheLivePoolOpenAndClosesTheCandidate()
    {
        var live = _pools.Invoker(Reviews, Settings(5));
        _pools.Commit();

        var candidate = _pools.Invoker(Reviews, Settings(9));
        _pools.Rollback();
        _time.Advance(TimeSpan.FromMinutes(5));

        Assert.Same(live, _pools.Invoker(Reviews, Settings(5)));
        Assert.IsNotType<ObjectDisposedException>(await Record.ExceptionAsync(() => SendAsync(live)));
        Assert.IsType<ObjectDisposedException>(await Record.ExceptionAsync(() => SendAsync(candidate)));
    }

    [Fact]
    public void Prune_RemovedEndpoint_IsForgotten()
    {
        var first = _pools.Endpoint(Reviews, "10.0.0.1", 9080);

        _pools.Prune(new HashSet<string> { Reviews }, new HashSet<(string, string, int)>());

        Assert.NotSame(first, _pools.Endpoint(Reviews, "10.0.0.1", 9080));
    }

    public void Dispose() => _pools.Dispose();

    /// <summary>A request to a closed loopback port: fails fast either way, but differently once the pool is disposed.</summary>
    private static async Task SendAsync(HttpMessageInvoker invoker)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{Ports.Free()}/");
        using var response = await invoker.SendAsync(request, CancellationToken.None).WaitAsync(Infrastructure.Timeouts.Default);
    }

    private static PoolSettings Settings(int connectTimeoutSeconds) =>
        new(TimeSpan.FromSeconds(connectTimeoutSeconds), int.MaxValue, PoolSettings.DefaultIdleTimeout, Timeout.InfiniteTimeSpan, null);
}
