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

    /// <summary>
    /// The shapes the control plane sends for a bowline.dev HealthCheck and RateLimit (Cluster.health_checks; the local
    /// rate limit filter with no bucket in every HCM, a bucket per limited route) are accepted, not NACKed.
    /// </summary>
    [Fact]
    public async Task ApplyAsync_HealthCheckAndRateLimitAsTheControlPlaneSendsThem_AreAccepted()
    {
        var checkedCluster = EdsCluster(ReviewsCluster);
        checkedCluster.HealthChecks.Add(new Envoy.Config.Core.V3.HealthCheck
        {
            Timeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
            Interval = Duration.FromTimeSpan(TimeSpan.FromSeconds(10)),
            IntervalJitter = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(100)),
            UnhealthyThreshold = 3,
            HealthyThreshold = 1,
            HttpHealthCheck = new Envoy.Config.Core.V3.HealthCheck.Types.HttpHealthCheck { Path = "/healthz", ExpectedStatuses = { new Envoy.Type.V3.Int64Range { Start = 200, End = 300 } } },
        });
        var grpcChecked = EdsCluster(RatingsCluster);
        grpcChecked.HealthChecks.Add(new Envoy.Config.Core.V3.HealthCheck
        {
            Timeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
            Interval = Duration.FromTimeSpan(TimeSpan.FromSeconds(10)),
            UnhealthyThreshold = 3,
            HealthyThreshold = 1,
            GrpcHealthCheck = new Envoy.Config.Core.V3.HealthCheck.Types.GrpcHealthCheck { ServiceName = "ratings.v1.Ratings" },
        });
        var rateLimitFilter = new Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpFilter
        {
            Name = "envoy.filters.http.local_ratelimit",
            TypedConfig = Any.Pack(new Envoy.Extensions.Filters.Http.LocalRatelimit.V3.LocalRateLimit { StatPrefix = "http_local_rate_limiter" }),
        };
        var limited = ClusterRoute("api", Prefix("/api"), ReviewsCluster);
        limited.TypedPerFilterConfig["envoy.filters.http.local_ratelimit"] = Any.Pack(new Envoy.Extensions.Filters.Http.LocalRatelimit.V3.LocalRateLimit
        {
            StatPrefix = "http_local_rate_limiter",
            TokenBucket = new Envoy.Type.V3.TokenBucket { MaxTokens = 10, TokensPerFill = 1, FillInterval = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)) },
            FilterEnabled = new Envoy.Config.Core.V3.RuntimeFractionalPercent { DefaultValue = new Envoy.Type.V3.FractionalPercent { Numerator = 100, Denominator = Envoy.Type.V3.FractionalPercent.Types.DenominatorType.Hundred } },
            FilterEnforced = new Envoy.Config.Core.V3.RuntimeFractionalPercent { DefaultValue = new Envoy.Type.V3.FractionalPercent { Numerator = 100, Denominator = Envoy.Type.V3.FractionalPercent.Types.DenominatorType.Hundred } },
            Status = new Envoy.Type.V3.HttpStatus { Code = Envoy.Type.V3.StatusCode.TooManyRequests },
            ResponseHeadersToAdd = { new Envoy.Config.Core.V3.HeaderValueOption { Header = new Envoy.Config.Core.V3.HeaderValue { Key = "x-limited-by", Value = "bowline" } } },
            EnableXRatelimitHeaders = Envoy.Extensions.Common.Ratelimit.V3.XRateLimitHeadersRFCVersion.DraftVersion03,
        });

        Assert.Null(await ApplyAsync(TypeUrls.Cluster, "c1", checkedCluster, grpcChecked));
        Assert.Null(await ApplyAsync(TypeUrls.Listener, "l1", Listener("outbound", 0, "127.0.0.1", HttpConnectionManagerFilter(Hcm("outbound", "http_proxy", rateLimitFilter)))));
        Assert.Null(await ApplyAsync(TypeUrls.RouteConfiguration, "r1", RouteConfig("http_proxy", VirtualHost("reviews", ["*"], limited, ClusterRoute("default", Prefix("/"), ReviewsCluster)))));
        Assert.True(Applier.Initialized);
    }

    public async ValueTask DisposeAsync() => await _host.DisposeAsync().AsTask().WaitAsync(Timeouts.Default);

    private async Task<string?> ApplyAsync(string typeUrl, string version, params IMessage[] resources) =>
        await Applier.ApplyAsync(typeUrl, [.. resources.Select(Any.Pack)], version, CancellationToken.None).WaitAsync(Timeouts.Default);
}
