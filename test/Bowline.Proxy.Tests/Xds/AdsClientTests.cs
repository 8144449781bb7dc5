using System.Globalization;
using Bowline.Proxy.Tests.Infrastructure;
using Bowline.Proxy.Xds;
using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Service.Discovery.V3;
using Google.Protobuf.WellKnownTypes;
using static Bowline.Proxy.Tests.Infrastructure.EnvoyResources;
using Filter = Envoy.Config.Listener.V3.Filter;

namespace Bowline.Proxy.Tests.Xds;

/// <summary>The proxy's ADS client against a scripted control plane: subscriptions, ACK/NACK, reconnection.</summary>
public sealed class AdsClientTests
{
    private const string RouteName = "http_proxy";

    [Fact]
    public async Task RunAsync_FirstRequest_CarriesNodeWithIdAndMetadata()
    {
        await using var server = await FakeAdsServer.StartAsync();
        await using var proxy = await RunningProxy.StartAsync(server.Address);

        var first = await server.NextRequestAsync();
        var second = await server.NextRequestAsync();

        Assert.Equal(RunningProxy.NodeId, first.Node.Id);
        Assert.Equal("reviews.bookinfo", first.Node.Cluster);
        var metadata = first.Node.Metadata.Fields;
        Assert.Equal("reviews-v1", metadata["NAME"].StringValue);
        Assert.Equal("bookinfo", metadata["NAMESPACE"].StringValue);
        Assert.Equal("bookinfo-reviews", metadata["SERVICE_ACCOUNT"].StringValue);
        Assert.Equal("NONE", metadata["INTERCEPTION_MODE"].StringValue);
        Assert.Equal(proxy.OutboundPort.ToString(CultureInfo.InvariantCulture), metadata["BOWLINE_OUTBOUND_PORT"].StringValue);
        var labels = metadata["LABELS"].StructValue.Fields;
        Assert.Equal("reviews", labels["app"].StringValue);
        Assert.Equal("v1", labels["version"].StringValue);
        // Only the first request of a stream carries the node.
        Assert.Null(second.Node);
    }

    [Fact]
    public async Task RunAsync_Connected_SubscribesClustersThenListenersAsWildcards()
    {
        await using var server = await FakeAdsServer.StartAsync();
        await using var proxy = await RunningProxy.StartAsync(server.Address);

        AssertRequest(await server.NextRequestAsync(), TypeUrls.Cluster, version: "", nonce: "");
        AssertRequest(await server.NextRequestAsync(), TypeUrls.Listener, version: "", nonce: "");
    }

    [Fact]
    public async Task RunAsync_CdsWithOneEdsCluster_AcksThenSubscribesEdsToExactlyThatName()
    {
        await using var server = await FakeAdsServer.StartAsync();
        await using var proxy = await RunningProxy.StartAsync(server.Address);
        await ExpectWildcardSubscriptionsAsync(server);
        var local = new Cluster { Name = "static-local", Type = Cluster.Types.DiscoveryType.Static, LoadAssignment = Endpoints("static-local", ("127.0.0.1", 8080, 1)) };

        await server.PushAsync(TypeUrls.Cluster, "c1", "nonce-c1", EdsCluster(ReviewsCluster), local);

        AssertRequest(await server.NextRequestAsync(), TypeUrls.Cluster, version: "c1", nonce: "nonce-c1");
        AssertRequest(await server.NextRequestAsync(), TypeUrls.ClusterLoadAssignment, version: "", nonce: "", ReviewsCluster);
    }

    [Fact]
    public async Task RunAsync_EdsResponse_AcksWithItsVersionNonceAndTheSameNames()
    {
        await using var server = await FakeAdsServer.StartAsync();
        await using var proxy = await RunningProxy.StartAsync(server.Address);
        await ExpectWildcardSubscriptionsAsync(server);
        await server.PushAsync(TypeUrls.Cluster, "c1", "nonce-c1", EdsCluster(ReviewsCluster));
        await server.NextRequestAsync();
        await server.NextRequestAsync();

        await server.PushAsync(TypeUrls.ClusterLoadAssignment, "e1", "nonce-e1", Endpoints(ReviewsCluster, ("10.0.0.1", 9080, 1)));

        AssertRequest(await server.NextRequestAsync(), TypeUrls.ClusterLoadAssignment, version: "e1", nonce: "nonce-e1", ReviewsCluster);
        Assert.Single(proxy.Host.Snapshots.Current.Clusters[ReviewsCluster].Endpoints);
    }

    [Fact]
    public async Task RunAsync_LdsWithRds_AcksThenSubscribesRdsToExactlyThatName()
    {
        await using var server = await FakeAdsServer.StartAsync();
        await using var proxy = await RunningProxy.StartAsync(server.Address);
        await ExpectWildcardSubscriptionsAsync(server);

        await server.PushAsync(TypeUrls.Listener, "l1", "nonce-l1", HttpListener("outbound", 0, RouteName));

        AssertRequest(await server.NextRequestAsync(), TypeUrls.Listener, version: "l1", nonce: "nonce-l1");
        AssertRequest(await server.NextRequestAsync(), TypeUrls.RouteConfiguration, version: "", nonce: "", RouteName);
    }

    [Fact]
    public async Task RunAsync_RejectedListener_NacksWithReasonAndKeepsServingThePreviousSnapshot()
    {
        await using var server = await FakeAdsServer.StartAsync();
        await using var proxy = await RunningProxy.StartAsync(server.Address);
        await ConfigureSidecarAsync(server);
        var before = proxy.Host.Snapshots.Current;
        var tcp = new Filter { Name = "envoy.filters.network.mongo_proxy", TypedConfig = Any.Pack(new Duration()) };

        await server.PushAsync(TypeUrls.Listener, "l2", "nonce-l2", HttpListener("outbound", 0, RouteName), Listener("mysql_3306", 3306, "127.0.0.1", tcp));

        var nack = await server.NextRequestAsync();
        AssertRequest(nack, TypeUrls.Listener, version: "l1", nonce: "nonce-l2", expectError: true);
        Assert.Equal((int)Grpc.Core.StatusCode.InvalidArgument, nack.ErrorDetail.Code);
        Assert.Contains("listener mysql_3306", nack.ErrorDetail.Message, StringComparison.Ordinal);
        Assert.Contains("google.protobuf.Duration", nack.ErrorDetail.Message, StringComparison.Ordinal);
        Assert.Same(before, proxy.Host.Snapshots.Current);
        Assert.Equal(1, proxy.Host.Stats.ValueOf("control_plane.xds.update_rejected"));
        // Per type, in Envoy's names: the listener manager's subscription saw one accepted and one rejected update.
        Assert.Equal((2, 1, 1), (proxy.Host.Stats.ValueOf("listener_manager.lds.update_attempt"), proxy.Host.Stats.ValueOf("listener_manager.lds.update_success"),
            proxy.Host.Stats.ValueOf("listener_manager.lds.update_rejected")));
        Assert.Equal(1, proxy.Host.Stats.ValueOf("control_plane.xds.lds.update_rejected"));
        Assert.Equal(0, proxy.Host.Stats.ValueOf("cluster_manager.cds.update_rejected"));
        var versionL1 = proxy.Host.Stats.ValueOf("listener_manager.lds.version");
        Assert.NotEqual(0, versionL1);
        Assert.True(proxy.Host.Stats.ValueOf("listener_manager.lds.update_time") > 0);

        // The next good version is accepted as usual, and the version gauge moves.
        await server.PushAsync(TypeUrls.Listener, "l3", "nonce-l3", HttpListener("outbound", 0, RouteName));
        AssertRequest(await server.NextRequestAsync(), TypeUrls.Listener, version: "l3", nonce: "nonce-l3");
        Assert.Equal(2, proxy.Host.Stats.ValueOf("listener_manager.lds.update_success"));
        Assert.NotEqual(versionL1, proxy.Host.Stats.ValueOf("listener_manager.lds.version"));
    }

    [Fact]
    public async Task RunAsync_RejectedEndpoints_NacksNamingTheClusterAndKeepsTheOldEndpoints()
    {
        await using var server = await FakeAdsServer.StartAsync();
        await using var proxy = await RunningProxy.StartAsync(server.Address);
        await ConfigureSidecarAsync(server);

        await server.PushAsync(TypeUrls.ClusterLoadAssignment, "e2", "nonce-e2", Endpoints(ReviewsCluster, ("reviews-v2.bookinfo", 9080, 1)));

        var nack = await server.NextRequestAsync();
        AssertRequest(nack, TypeUrls.ClusterLoadAssignment, version: "e1", nonce: "nonce-e2", expectError: true, ReviewsCluster);
        Assert.Contains($"cluster {ReviewsCluster}", nack.ErrorDetail.Message, StringComparison.Ordinal);
        Assert.Equal("10.0.0.1:9080", Assert.Single(proxy.Host.Snapshots.Current.Clusters[ReviewsCluster].Endpoints).Endpoint.ToString());
    }

    [Fact]
    public async Task RunAsync_ControlPlaneRestarts_ReconnectsAfterBackoffAndResubscribesWithAcceptedVersions()
    {
        var time = new RecordingTimeProvider();
        await using var server = await FakeAdsServer.StartAsync();
        var port = server.Address.Port;
        await using var proxy = await RunningProxy.StartAsync(server.Address, time);
        await ConfigureSidecarAsync(server);
        var configured = proxy.Host.Snapshots.Current;
        while (time.Timers.TryRead(out _))
        {
        }

        await server.StopAsync();
        // The stream ended cleanly: the client waits a jittered share of the initial backoff, then reconnects.
        var delay = await NextBackoffAsync(time);
        await using var restarted = await FakeAdsServer.StartAsync(port);
        time.Advance(delay);
        var cds = await DriveClockUntilAsync(time, restarted.NextRequestAsync());

        Assert.InRange(delay, TimeSpan.FromTicks(1), RunningProxy.InitialBackoff);
        AssertRequest(cds, TypeUrls.Cluster, version: "c1", nonce: "");
        Assert.Equal(RunningProxy.NodeId, cds.Node?.Id);
        AssertRequest(await restarted.NextRequestAsync(), TypeUrls.Listener, version: "l1", nonce: "");
        AssertRequest(await restarted.NextRequestAsync(), TypeUrls.ClusterLoadAssignment, version: "e1", nonce: "", ReviewsCluster);
        AssertRequest(await restarted.NextRequestAsync(), TypeUrls.RouteConfiguration, version: "r1", nonce: "", RouteName);
        // The last good config kept serving throughout.
        Assert.Same(configured, proxy.Host.Snapshots.Current);
    }

    [Fact]
    public async Task RunAsync_ControlPlaneUnreachable_BackoffDoublesWithJitterUpToTheMaximum()
    {
        var time = new RecordingTimeProvider();
        await using var proxy = await RunningProxy.StartAsync(new Uri($"http://127.0.0.1:{Ports.Free()}"), time);

        var delays = new List<TimeSpan>();
        for (var attempt = 0; attempt < 8; attempt++)
        {
            var delay = await NextBackoffAsync(time);
            delays.Add(delay);
            time.Advance(delay);
        }

        // Full jitter: attempt n waits a random share of min(initial * 2^n, max).
        for (var n = 0; n < delays.Count; n++)
        {
            var ceiling = TimeSpan.FromTicks(Math.Min(RunningProxy.MaxBackoff.Ticks, RunningProxy.InitialBackoff.Ticks << n));
            Assert.InRange(delays[n], TimeSpan.Zero, ceiling);
        }
        Assert.True(delays.Skip(5).Any(d => d > 4 * RunningProxy.InitialBackoff), "later delays should draw from a larger window: " + string.Join(", ", delays));
        Assert.True(proxy.Host.Stats.ValueOf("control_plane.xds.reconnects") >= 8);
        Assert.Equal(0, proxy.Host.Stats.ValueOf("control_plane.connected_state"));
    }

    /// <summary>
    /// Waits for <paramref name="task"/>, advancing the fake clock past each backoff the client starts meanwhile. The gRPC
    /// channel keeps a reconnect backoff of its own on real time, during which attempts fail at once; each such failure
    /// schedules another (fake-time) backoff, which this advances.
    /// </summary>
    internal static async Task<T> DriveClockUntilAsync<T>(RecordingTimeProvider time, Task<T> task)
    {
        while (!task.IsCompleted)
        {
            var timer = NextBackoffAsync(time);
            if (await Task.WhenAny(task, timer) == timer)
            {
                time.Advance(await timer);
            }
        }
        return await task;
    }

    /// <summary>
    /// The due time of the next backoff the client starts. Each stream also arms a stall timer of
    /// <see cref="AdsProgressOptions.StallTimeout"/> when it starts; those are skipped, so advancing a backoff never
    /// stalls a stream by accident.
    /// </summary>
    internal static async Task<TimeSpan> NextBackoffAsync(RecordingTimeProvider time)
    {
        while (true)
        {
            var due = await time.NextTimerAsync();
            if (due < AdsProgressOptions.DefaultStallTimeout)
            {
                return due;
            }
        }
    }

    /// <summary>Takes the proxy from nothing to a full sidecar config (CDS c1, EDS e1, LDS l1, RDS r1), checking each ACK and subscription.</summary>
    internal static async Task ConfigureSidecarAsync(FakeAdsServer server, Func<Task>? betweenSteps = null)
    {
        betweenSteps ??= () => Task.CompletedTask;
        await ExpectWildcardSubscriptionsAsync(server);
        await betweenSteps();

        await server.PushAsync(TypeUrls.Cluster, "c1", "nonce-c1", EdsCluster(ReviewsCluster, http2: true));
        AssertRequest(await server.NextRequestAsync(), TypeUrls.Cluster, version: "c1", nonce: "nonce-c1");
        AssertRequest(await server.NextRequestAsync(), TypeUrls.ClusterLoadAssignment, version: "", nonce: "", ReviewsCluster);
        await betweenSteps();

        await server.PushAsync(TypeUrls.ClusterLoadAssignment, "e1", "nonce-e1", Endpoints(ReviewsCluster, ("10.0.0.1", 9080, 1)));
        AssertRequest(await server.NextRequestAsync(), TypeUrls.ClusterLoadAssignment, version: "e1", nonce: "nonce-e1", ReviewsCluster);
        await betweenSteps();

        await server.PushAsync(TypeUrls.Listener, "l1", "nonce-l1", HttpListener("outbound", 0, RouteName));
        AssertRequest(await server.NextRequestAsync(), TypeUrls.Listener, version: "l1", nonce: "nonce-l1");
        AssertRequest(await server.NextRequestAsync(), TypeUrls.RouteConfiguration, version: "", nonce: "", RouteName);
        await betweenSteps();

        await server.PushAsync(TypeUrls.RouteConfiguration, "r1", "nonce-r1",
            RouteConfig(RouteName, VirtualHost("reviews.bookinfo.svc.cluster.local:9080", ["reviews", "reviews:9080"], ClusterRoute("default", Prefix("/"), ReviewsCluster))));
        AssertRequest(await server.NextRequestAsync(), TypeUrls.RouteConfiguration, version: "r1", nonce: "nonce-r1", RouteName);
    }

    private static async Task ExpectWildcardSubscriptionsAsync(FakeAdsServer server)
    {
        AssertRequest(await server.NextRequestAsync(), TypeUrls.Cluster, version: "", nonce: "");
        AssertRequest(await server.NextRequestAsync(), TypeUrls.Listener, version: "", nonce: "");
    }

    private static void AssertRequest(DiscoveryRequest request, string typeUrl, string version, string nonce, params string[] names) =>
        AssertRequest(request, typeUrl, version, nonce, expectError: false, names);

    private static void AssertRequest(DiscoveryRequest request, string typeUrl, string version, string nonce, bool expectError, params string[] names)
    {
        Assert.Equal(TypeUrls.ShortName(typeUrl), TypeUrls.ShortName(request.TypeUrl));
        Assert.Equal(version, request.VersionInfo);
        Assert.Equal(nonce, request.ResponseNonce);
        Assert.Equal(names, request.ResourceNames);
        Assert.Equal(expectError, request.ErrorDetail is not null);
    }
}
