using Bowline.Proxy.Tests.Infrastructure;
using Bowline.Proxy.Xds;
using Bowline.Xds;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.DependencyInjection;
using static Bowline.Proxy.Tests.Infrastructure.EnvoyResources;

namespace Bowline.Proxy.Tests.Xds;

/// <summary>
/// State-of-the-world semantics on the proxy side, driven directly (no stream): what a response replaces, what it merges,
/// and that a rejection changes nothing. The host is built but not started, so no xDS client competes for the applier.
/// </summary>
public sealed class ConfigApplierTests : IAsyncDisposable
{
    private readonly ProxyHost _host = ProxyHost.Create(new ProxyOptions
    {
        NodeId = RunningProxy.NodeId,
        WorkloadName = "reviews-v1",
        XdsAddress = new Uri("http://127.0.0.1:1"),
        AdminPort = 0,
    }, random: new Random(42));

    private ConfigApplier Applier => _host.Services.GetRequiredService<ConfigApplier>();

    [Fact]
    public async Task ApplyAsync_ValidClusters_ReturnsNullAndPublishesASnapshot()
    {
        var error = await ApplyAsync(TypeUrls.Cluster, "c1", EdsCluster(ReviewsCluster));

        Assert.Null(error);
        Assert.Equal("c1", Applier.VersionOf(TypeUrls.Cluster));
        Assert.Equal(1, _host.Snapshots.Current.Version);
        Assert.Contains(ReviewsCluster, _host.Snapshots.Current.Clusters.Keys);
    }

    [Fact]
    public async Task ApplyAsync_InvalidResource_ReturnsTheReasonAndChangesNothing()
    {
        await ApplyAsync(TypeUrls.Cluster, "c1", EdsCluster(ReviewsCluster));
        var before = _host.Snapshots.Current;

        var error = await ApplyAsync(TypeUrls.Cluster, "c2", EdsCluster(ReviewsCluster), new Envoy.Config.Cluster.V3.Cluster { Name = "dns", Type = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType.LogicalDns });

        Assert.NotNull(error);
        Assert.Contains("cluster dns", error, StringComparison.Ordinal);
        Assert.Same(before, _host.Snapshots.Current);
        Assert.Equal("c1", Applier.VersionOf(TypeUrls.Cluster));
    }

    [Fact]
    public async Task ApplyAsync_SameNameTwice_IsRejectedNamingIt()
    {
        var error = await ApplyAsync(TypeUrls.Cluster, "c1", EdsCluster(ReviewsCluster), EdsCluster(ReviewsCluster));

        Assert.Equal($"CDS response lists {ReviewsCluster} twice", error);
    }

    [Fact]
    public async Task ApplyAsync_ResourceOfAnotherType_IsRejected()
    {
        var error = await ApplyAsync(TypeUrls.Cluster, "c1", Endpoints(ReviewsCluster));

        Assert.Contains("a CDS response carries a type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ApplyAsync_UndecodableResource_IsRejected()
    {
        var garbage = new Any { TypeUrl = TypeUrls.Cluster, Value = ByteString.CopyFrom(0xFF, 0xFF, 0xFF) };

        var error = await Applier.ApplyAsync(TypeUrls.Cluster, [garbage], "c1", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.StartsWith("CDS: undecodable resource", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ApplyAsync_CdsWithoutACluster_RemovesIt()
    {
        await ApplyAsync(TypeUrls.Cluster, "c1", EdsCluster(ReviewsCluster), EdsCluster(RatingsCluster));

        await ApplyAsync(TypeUrls.Cluster, "c2", EdsCluster(ReviewsCluster));

        Assert.Equal([ReviewsCluster], _host.Snapshots.Current.Clusters.Keys);
    }

    [Fact]
    public async Task ApplyAsync_EdsWithoutAnAssignment_KeepsIt()
    {
        await ApplyAsync(TypeUrls.Cluster, "c1", EdsCluster(ReviewsCluster), EdsCluster(RatingsCluster));
        await ApplyAsync(TypeUrls.ClusterLoadAssignment, "e1", Endpoints(ReviewsCluster, ("10.0.0.1", 9080, 1)), Endpoints(RatingsCluster, ("10.0.0.2", 9080, 1)));

        await ApplyAsync(TypeUrls.ClusterLoadAssignment, "e2", Endpoints(RatingsCluster, ("10.0.0.3", 9080, 1)));

        var clusters = _host.Snapshots.Current.Clusters;
        Assert.Equal("10.0.0.1:9080", Assert.Single(clusters[ReviewsCluster].Endpoints).Endpoint.ToString());
        Assert.Equal("10.0.0.3:9080", Assert.Single(clusters[RatingsCluster].Endpoints).Endpoint.ToString());
    }

    [Fact]
    public async Task Dependencies_ListenersAndClusters_NameTheirRoutesAndEdsServiceNames()
    {
        await ApplyAsync(TypeUrls.Cluster, "c1", EdsCluster(ReviewsCluster), EdsCluster(RatingsCluster, serviceName: "ratings-eds"),
            new Envoy.Config.Cluster.V3.Cluster { Name = "static", Type = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType.Static });
        await ApplyAsync(TypeUrls.Listener, "l1", HttpListener("outbound_9080", 0, "9080"), HttpListener("outbound_9090", 0, "9090", ip: "127.0.0.2"));

        var (routes, endpoints) = Applier.Dependencies();

        Assert.Equal(["9080", "9090"], routes.Order(StringComparer.Ordinal));
        Assert.Equal([ReviewsCluster, "ratings-eds"], endpoints.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Initialized_ListenersWaitingForRoutes_IsFalseUntilTheRoutesArrive()
    {
        await ApplyAsync(TypeUrls.Cluster, "c1", EdsCluster(ReviewsCluster));
        await ApplyAsync(TypeUrls.Listener, "l1", HttpListener("outbound", 0, "9080"));
        var warming = Applier.Initialized;

        await ApplyAsync(TypeUrls.RouteConfiguration, "r1", RouteConfig("9080", VirtualHost("reviews", ["*"], ClusterRoute("default", Prefix("/"), ReviewsCluster))));

        Assert.False(warming);
        Assert.True(Applier.Initialized);
        Assert.True(_host.Snapshots.Current.Listeners["outbound"].IsWarm);
    }

    public async ValueTask DisposeAsync() => await _host.DisposeAsync().AsTask().WaitAsync(Timeouts.Default);

    private async Task<string?> ApplyAsync(string typeUrl, string version, params IMessage[] resources) =>
        await Applier.ApplyAsync(typeUrl, [.. resources.Select(Any.Pack)], version, CancellationToken.None).WaitAsync(Timeouts.Default);
}
