using System.Net;
using Bowline.Proxy.Clusters;
using Bowline.Proxy.Clusters.Health;
using Bowline.Proxy.Clusters.LoadBalancing;
using Bowline.Proxy.Stats;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Bowline.Proxy.Tests.Clusters.Health;

/// <summary>Active HTTP and TCP health checks against a real loopback server, with rounds driven by a paused clock.</summary>
public sealed class HealthCheckerTests : IAsyncDisposable
{
    private readonly FakeTimeProvider _time = new();
    private readonly ProxyStats _stats = new();
    private WebApplication? _app;
    private volatile int _status = 200;

    private async Task<int> StartBackendAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        _app = builder.Build();
        _app.Run(context =>
        {
            context.Response.StatusCode = context.Request.Path == "/healthz" ? _status : 404;
            return Task.CompletedTask;
        });
        await _app.StartAsync().WaitAsync(TimeSpan.FromSeconds(10));
        return new Uri(_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;
    }

    private (ClusterState Cluster, UpstreamEndpoint Host, HealthChecker Checker) Create(int port, HealthCheckConfig config)
    {
        var cluster = new ClusterState("c", new ClusterStats(_stats, "c"));
        var host = new UpstreamEndpoint("127.0.0.1", port);
        using var invoker = new UpstreamPool(new SocketsHttpHandler());
        var clusterConfig = new ClusterConfig(new Envoy.Config.Cluster.V3.Cluster { Name = "c" }, UpstreamProtocol.Http1, invoker, new RoundRobinBalancer(), CircuitBreakerLimits.Default, null, new HostSetPolicy(0), healthCheck: config);
        cluster.Publish(clusterConfig, new HostSet(null, [new WeightedEndpoint(host, 1, true), new WeightedEndpoint(new UpstreamEndpoint("127.0.0.1", 1), 1, true)], 0, null));
        var checker = new HealthChecker(cluster, config, _time, new Random(42), _stats, NullLogger.Instance);
        return (cluster, host, checker);
    }

    private static HealthCheckConfig Http(int unhealthy = 2, int healthy = 2) =>
        new(HealthCheckKind.Http, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(1), TimeSpan.Zero, unhealthy, healthy, "/healthz", null, [(200, 300)], "");

    /// <summary>Runs health-check rounds (each after the interval) until <paramref name="condition"/> holds, at most <paramref name="rounds"/>.</summary>
    private async Task RoundsUntilAsync(HealthChecker checker, Func<bool> condition, int rounds)
    {
        for (var i = 0; i < rounds && !condition(); i++)
        {
            await checker.LastRound.WaitAsync(TimeSpan.FromSeconds(10));
            _time.Advance(TimeSpan.FromSeconds(5));
        }
        await checker.LastRound.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task HostFailingItsChecks_LeavesRotationAfterTheThreshold_AndReturnsAfterHealthyThreshold()
    {
        var port = await StartBackendAsync();
        var (cluster, host, checker) = Create(port, Http(unhealthy: 2, healthy: 2));
        using var _ = checker;
        await RoundsUntilAsync(checker, () => _stats.ValueOf("cluster.c.health_check.success") >= 1, 3);
        Assert.False(host.FailedActiveHealthCheck);

        _status = 503;
        await RoundsUntilAsync(checker, () => host.FailedActiveHealthCheck, 5);
        Assert.True(host.FailedActiveHealthCheck);
        Assert.DoesNotContain(host, cluster.Current!.Hosts.Available);

        _status = 200;
        await RoundsUntilAsync(checker, () => !host.FailedActiveHealthCheck, 5);
        Assert.False(host.FailedActiveHealthCheck);
        Assert.Contains(host, cluster.Current!.Hosts.Available);
    }

    [Fact]
    public async Task TcpCheck_ClosedPort_FailsTheHost()
    {
        var (cluster, _, checker) = Create(1, new HealthCheckConfig(HealthCheckKind.Tcp, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(1), TimeSpan.Zero, 1, 1, "", null, [], ""));
        using var _ = checker;
        var closed = cluster.Current!.Hosts.All[0].Endpoint;

        await RoundsUntilAsync(checker, () => closed.FailedActiveHealthCheck, 3);

        Assert.True(closed.FailedActiveHealthCheck);
        Assert.True(_stats.ValueOf("cluster.c.health_check.network_failure") >= 1);
    }

    [Fact]
    public void Compile_MissingThresholds_IsRejectedNamingTheCheck()
    {
        var check = new Envoy.Config.Core.V3.HealthCheck
        {
            Interval = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(5)),
            Timeout = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
            HttpHealthCheck = new Envoy.Config.Core.V3.HealthCheck.Types.HttpHealthCheck { Path = "/healthz" },
        };

        var error = Assert.Throws<Bowline.Proxy.Configuration.ProxyConfigException>(() => HealthCheckConfig.Compile([check], "cluster c"));

        Assert.Contains("unhealthy_threshold", error.Message, StringComparison.Ordinal);
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
    }
}
