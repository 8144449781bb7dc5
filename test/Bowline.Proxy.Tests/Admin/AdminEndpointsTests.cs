using System.Net;
using Bowline.Proxy.Tests.Infrastructure;
using Bowline.Proxy.Tests.Xds;

namespace Bowline.Proxy.Tests.Admin;

public sealed class AdminEndpointsTests
{
    [Fact]
    public async Task Ready_ConfigArrivesInStages_Returns503UntilListenersClustersAndRoutesAreApplied()
    {
        await using var server = await FakeAdsServer.StartAsync();
        await using var proxy = await RunningProxy.StartAsync(server.Address);
        using var admin = new HttpClient { BaseAddress = proxy.Host.AdminAddress, Timeout = Timeouts.Default };
        var statuses = new List<HttpStatusCode>();

        // Before any config, after CDS, after EDS, after LDS (its listener still warming for want of RDS).
        await AdsClientTests.ConfigureSidecarAsync(server, async () => statuses.Add(await ReadyAsync(admin)));
        using var afterRoutes = await admin.GetAsync(new Uri("/ready", UriKind.Relative)).WaitAsync(Timeouts.Default);

        Assert.Equal([HttpStatusCode.ServiceUnavailable, HttpStatusCode.ServiceUnavailable, HttpStatusCode.ServiceUnavailable, HttpStatusCode.ServiceUnavailable], statuses);
        Assert.Equal(HttpStatusCode.OK, afterRoutes.StatusCode);
        Assert.Equal("LIVE\n", await afterRoutes.Content.ReadAsStringAsync().WaitAsync(Timeouts.Default));
    }

    [Fact]
    public async Task Clusters_AfterConfig_ListsEndpointsWithHealthAndProtocol()
    {
        await using var server = await FakeAdsServer.StartAsync();
        await using var proxy = await RunningProxy.StartAsync(server.Address);
        using var admin = new HttpClient { BaseAddress = proxy.Host.AdminAddress, Timeout = Timeouts.Default };
        await AdsClientTests.ConfigureSidecarAsync(server);

        var text = await admin.GetStringAsync(new Uri("/clusters", UriKind.Relative)).WaitAsync(Timeouts.Default);

        Assert.Contains($"{EnvoyResources.ReviewsCluster}::protocol::Http2\n", text, StringComparison.Ordinal);
        Assert.Contains($"{EnvoyResources.ReviewsCluster}::10.0.0.1:9080::health_flags::healthy\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StatsPrometheus_AdminAndStatusPort_ServeEnvoyStatsTagged_StatusServesNothingElse()
    {
        await using var server = await FakeAdsServer.StartAsync();
        await using var proxy = await RunningProxy.StartAsync(server.Address, statusPort: 0);
        using var admin = new HttpClient { BaseAddress = proxy.Host.AdminAddress, Timeout = Timeouts.Default };
        using var status = new HttpClient { BaseAddress = proxy.Host.StatusAddress, Timeout = Timeouts.Default };
        await AdsClientTests.ConfigureSidecarAsync(server);

        var fromAdmin = await admin.GetStringAsync(new Uri("/stats/prometheus", UriKind.Relative)).WaitAsync(Timeouts.Default);
        var fromStatus = await status.GetStringAsync(new Uri("/stats/prometheus", UriKind.Relative)).WaitAsync(Timeouts.Default);
        using var configDump = await status.GetAsync(new Uri("/config_dump", UriKind.Relative)).WaitAsync(Timeouts.Default);

        Assert.NotEqual(proxy.Host.AdminAddress.Port, proxy.Host.StatusAddress!.Port);
        foreach (var text in new[] { fromAdmin, fromStatus })
        {
            Assert.Contains($"envoy_cluster_upstream_cx_total{{cluster_name=\"{EnvoyResources.ReviewsCluster}\"}} 0\n", text, StringComparison.Ordinal);
        }
        Assert.Equal(HttpStatusCode.NotFound, configDump.StatusCode);
    }

    private static async Task<HttpStatusCode> ReadyAsync(HttpClient admin)
    {
        using var response = await admin.GetAsync(new Uri("/ready", UriKind.Relative)).WaitAsync(Timeouts.Default);
        return response.StatusCode;
    }
}
