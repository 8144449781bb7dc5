using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Tests.Translation;
using Bowline.Xds;
using Envoy.Service.Status.V3;

namespace Bowline.ControlPlane.Tests.Xds;

/// <summary>Envoy's CSDS over real gRPC: each connected proxy's types, SYNCED once ACKed, ERROR with the reason once NACKed.</summary>
public sealed class ClientStatusTests
{
    [Fact]
    public async Task FetchClientStatus_ReportsSyncedAfterAnAck_AndTheNackReasonAfterARejection()
    {
        await using var plane = await ControlPlaneFixture.StartAsync(("bookinfo.yaml", Bookinfo.WorkloadEntries));
        using var proxy = plane.Connect();
        var node = TestNodes.ProductpageSidecar();
        await proxy.SubscribeAsync(TypeUrls.Cluster, node);
        var clusters = await proxy.ReceiveAsync();
        await proxy.AckAsync(clusters);
        await proxy.SubscribeAsync(TypeUrls.Listener, null);
        var listeners = await proxy.ReceiveAsync();
        await proxy.NackAsync(listeners, "", "listener x: field y is not supported");
        var csds = new ClientStatusDiscoveryService.ClientStatusDiscoveryServiceClient(plane.Channel);

        // The requests above are handled in order on the stream; poll until the NACK has been recorded, bounded.
        ClientConfig config;
        using (var deadline = new CancellationTokenSource(TestTimeouts.Default))
        {
            while (true)
            {
                var response = await csds.FetchClientStatusAsync(new ClientStatusRequest(), cancellationToken: deadline.Token);
                config = Assert.Single(response.Config);
                if (config.GenericXdsConfigs.Any(c => c.TypeUrl == TypeUrls.Listener && c.ConfigStatus == ConfigStatus.Error))
                {
                    break;
                }
                await Task.Delay(20, deadline.Token);
            }
        }

        Assert.Equal(node.Id, config.Node.Id);
        var cds = config.GenericXdsConfigs.Single(c => c.TypeUrl == TypeUrls.Cluster);
        Assert.Equal((ConfigStatus.Synced, Envoy.Admin.V3.ClientResourceStatus.Acked, clusters.VersionInfo), (cds.ConfigStatus, cds.ClientStatus, cds.VersionInfo));
        var lds = config.GenericXdsConfigs.Single(c => c.TypeUrl == TypeUrls.Listener);
        Assert.Equal(Envoy.Admin.V3.ClientResourceStatus.Nacked, lds.ClientStatus);
        Assert.Equal(("listener x: field y is not supported", listeners.VersionInfo), (lds.ErrorState.Details, lds.ErrorState.VersionInfo));
        // Node matchers select by id.
        var none = await csds.FetchClientStatusAsync(new ClientStatusRequest { NodeMatchers = { new Envoy.Type.Matcher.V3.NodeMatcher { NodeId = new Envoy.Type.Matcher.V3.StringMatcher { Exact = "nobody" } } } });
        Assert.Empty(none.Config);
    }
}
