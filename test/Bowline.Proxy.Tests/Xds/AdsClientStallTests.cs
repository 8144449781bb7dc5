using Bowline.Proxy.Tests.Infrastructure;
using Bowline.Proxy.Xds;
using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using static Bowline.Proxy.Tests.Infrastructure.EnvoyResources;

namespace Bowline.Proxy.Tests.Xds;

/// <summary>
/// A stream that owes the proxy a write or a response and delivers nothing is noticed, counted and reopened; one that
/// is merely idle is left alone. The clock is fake, so the 60 s timeout costs nothing.
/// </summary>
public sealed class AdsClientStallTests
{
    private static readonly TimeSpan StallTimeout = AdsProgressOptions.DefaultStallTimeout;

    [Fact]
    public async Task RunAsync_SubscriptionNeverAnswered_IsCountedAsStalledAndTheStreamReopened()
    {
        var time = new RecordingTimeProvider();
        await using var server = await FakeAdsServer.StartAsync();
        await using var proxy = await RunningProxy.StartAsync(server.Address, time);
        Assert.Equal(TypeUrls.Cluster, (await server.NextRequestAsync()).TypeUrl);
        Assert.Equal(TypeUrls.Listener, (await server.NextRequestAsync()).TypeUrl);

        // Just short of the timeout nothing happens.
        time.Advance(StallTimeout - TimeSpan.FromSeconds(1));
        Assert.Equal(0, proxy.Host.Stats.ValueOf("control_plane.xds.stalled_streams"));
        // A stalled stream looks connected; that is why it needs watching.
        await PollUntilAsync(() => proxy.Host.Stats.ValueOf("control_plane.connected_state") == 1);

        time.Advance(TimeSpan.FromSeconds(1));
        var reopened = await AdsClientTests.DriveClockUntilAsync(time, server.NextStreamStartAsync());

        Assert.Equal(TypeUrls.Cluster, reopened.TypeUrl);
        Assert.Equal(RunningProxy.NodeId, reopened.Node.Id);
        Assert.Equal(2, server.StreamCount);
        Assert.Equal(1, proxy.Host.Stats.ValueOf("control_plane.xds.stalled_streams"));
    }

    [Fact]
    public async Task RunAsync_SyncedAndIdle_IsNeverReopened()
    {
        var time = new RecordingTimeProvider();
        await using var server = await FakeAdsServer.StartAsync();
        await using var proxy = await RunningProxy.StartAsync(server.Address, time);
        await AdsClientTests.ConfigureSidecarAsync(server);
        await PollUntilAsync(() => proxy.Host.Stats.ValueOf("control_plane.xds.requests_queued") == 0);

        time.Advance(StallTimeout * 5);

        // The same stream still carries updates.
        await server.PushAsync(TypeUrls.ClusterLoadAssignment, "e2", "nonce-e2", Endpoints(ReviewsCluster, ("10.0.0.2", 9080, 1)));
        var ack = await server.NextRequestAsync();
        Assert.Equal("nonce-e2", ack.ResponseNonce);
        Assert.Null(ack.ErrorDetail);
        Assert.Equal(1, server.StreamCount);
        Assert.Equal(0, proxy.Host.Stats.ValueOf("control_plane.xds.stalled_streams"));
    }

    [Fact]
    public async Task RunAsync_ControlPlaneStopsReading_ResponsesStillApplyAndTheWedgedStreamIsReopened()
    {
        var time = new RecordingTimeProvider();
        await using var server = await FakeAdsServer.StartAsync();
        await using var proxy = await RunningProxy.StartAsync(server.Address, time);
        Assert.Equal(TypeUrls.Cluster, (await server.NextRequestAsync()).TypeUrl);
        Assert.Equal(TypeUrls.Listener, (await server.NextRequestAsync()).TypeUrl);

        // Enough long-named EDS clusters that the EDS subscription (about 0.9 MB) overflows the fake server's 768 KiB
        // stream window, which it stops draining: the proxy's write cannot complete, as in the 17,000-port wedge.
        server.PauseReading();
        var clusters = Enumerable.Range(0, 800).Select(i => (Cluster)EdsCluster($"outbound|{10_000 + i}||{new string('w', 1_100)}.default.svc.cluster.local")).ToArray();
        await server.PushAsync(TypeUrls.Cluster, "c1", "nonce-c1", clusters);
        Assert.Equal("nonce-c1", (await server.NextRequestAsync()).ResponseNonce);

        // Reading does not wait on that write: a listener pushed meanwhile is applied, ACKed (queued) and its routes asked for (queued).
        await server.PushAsync(TypeUrls.Listener, "l1", "nonce-l1", HttpListener("outbound", 0, "http_proxy"));
        await PollUntilAsync(() => proxy.Host.Stats.ValueOf("control_plane.xds.requests_queued") == 3);
        Assert.True(proxy.Host.Snapshots.Current.Listeners.ContainsKey("outbound"));
        Assert.Null(server.TryNextRequest());

        time.Advance(StallTimeout);
        var reopened = await AdsClientTests.DriveClockUntilAsync(time, server.NextStreamStartAsync());

        Assert.Equal(TypeUrls.Cluster, reopened.TypeUrl);
        Assert.Equal("c1", reopened.VersionInfo);
        Assert.Equal(1, proxy.Host.Stats.ValueOf("control_plane.xds.stalled_streams"));
        Assert.Equal(2, server.StreamCount);
    }

    private static async Task PollUntilAsync(Func<bool> condition)
    {
        using var deadline = new CancellationTokenSource(Timeouts.Default);
        while (!condition())
        {
            await Task.Delay(TimeSpan.FromMilliseconds(10), deadline.Token);
        }
    }
}
