using Bowline.Proxy.Clusters;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Tests.Infrastructure;
using Envoy.Config.Cluster.V3;
using Filter = Envoy.Config.Listener.V3.Filter;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Http.Fault.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Type.Matcher.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using static Bowline.Proxy.Tests.Infrastructure.EnvoyResources;

namespace Bowline.Proxy.Tests.Configuration;

/// <summary>
/// What the compiler accepts and, above all, what it refuses: every refusal becomes a NACK's error_detail, so its message
/// must name the resource and the field an operator has to fix.
/// </summary>
public sealed class ProxyConfigCompilerTests : IDisposable
{
    private readonly CompilerHarness _compiler = new();

    [Fact]
    public void Compile_SidecarConfig_ProducesWarmListenerRoutesAndHttp2ClusterWithEndpoints()
    {
        var snapshot = _compiler.Compile(
            HttpListener("outbound_http", 15001, "http_proxy"),
            RouteConfig("http_proxy", VirtualHost("reviews.default.svc.cluster.local:9080", ["reviews", "reviews:9080"], ClusterRoute("default", Prefix("/"), ReviewsCluster))),
            EdsCluster(ReviewsCluster, http2: true),
            Endpoints(ReviewsCluster, ("10.0.0.1", 9080, 1), ("10.0.0.2", 9080, 1)));

        var cluster = snapshot.Clusters[ReviewsCluster];
        Assert.Equal(UpstreamProtocol.Http2, cluster.Protocol);
        Assert.Equal(["10.0.0.1:9080", "10.0.0.2:9080"], cluster.Endpoints.Select(e => e.Endpoint.ToString()));
        Assert.Equal(2, cluster.Healthy.Length);

        var listener = snapshot.Listeners["outbound_http"];
        Assert.True(listener.IsWarm);
        Assert.Equal("127.0.0.1:15001", Assert.Single(listener.Addresses).ToString());
        var chain = listener.ChainFor(15001)!;
        Assert.Equal("http_proxy", chain.RouteConfigName);
        var route = Assert.Single(chain.Routes!.FindVirtualHost("reviews:9080")!.Routes);
        Assert.Same(cluster, Assert.Single(route.Targets).Cluster);
        Assert.Equal(2, _compiler.Stats.ValueOf($"cluster.{ReviewsCluster}.membership_healthy"));
    }

    [Fact]
    public void Compile_ClusterWithoutProtocolOptions_SpeaksHttp1()
    {
        var snapshot = _compiler.Compile(EdsCluster(ReviewsCluster), Endpoints(ReviewsCluster, ("10.0.0.1", 9080, 1)));

        Assert.Equal(UpstreamProtocol.Http1, snapshot.Clusters[ReviewsCluster].Protocol);
    }

    [Theory]
    [InlineData(false, 3u, 3)]
    [InlineData(false, 1u, 0)]
    [InlineData(true, 3u, 0)]
    public void Compile_MaxRequestsPerConnection_CountedByHttp1PoolsAboveOneOnly(bool http2, uint maxRequests, int counted)
    {
        // 1 is the router's Connection: close; HTTP/2 connections are not limited, so their pool counts nothing.
        var cluster = EdsCluster(ReviewsCluster);
        cluster.TypedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] = Any.Pack(new Envoy.Extensions.Upstreams.Http.V3.HttpProtocolOptions
        {
            CommonHttpProtocolOptions = new Envoy.Config.Core.V3.HttpProtocolOptions { MaxRequestsPerConnection = maxRequests },
            ExplicitHttpConfig = http2
                ? new() { Http2ProtocolOptions = new Envoy.Config.Core.V3.Http2ProtocolOptions() }
                : new() { HttpProtocolOptions = new Envoy.Config.Core.V3.Http1ProtocolOptions() },
        });

        var config = _compiler.Compile(cluster).Clusters[ReviewsCluster].Current!.Config;

        Assert.Equal((int)maxRequests, config.MaxRequestsPerConnection);
        Assert.Equal(counted, config.Pool.MaxRequestsPerConnection);
    }

    [Fact]
    public void Compile_ListenerBeforeItsRoutes_IsNotWarm()
    {
        var snapshot = _compiler.Compile(HttpListener("outbound_http", 15001, "http_proxy"), EdsCluster(ReviewsCluster));

        var listener = snapshot.Listeners["outbound_http"];
        Assert.False(listener.IsWarm);
        Assert.Null(listener.ChainFor(15001)!.Routes);
    }

    [Fact]
    public void Compile_EdsClusterBeforeItsEndpoints_HasNoEndpoints()
    {
        var snapshot = _compiler.Compile(EdsCluster(ReviewsCluster));

        Assert.Empty(snapshot.Clusters[ReviewsCluster].Endpoints);
        Assert.Null(snapshot.Clusters[ReviewsCluster].PickEndpoint());
    }

    [Fact]
    public void Compile_EdsServiceName_TakesEndpointsFromThatAssignment()
    {
        var snapshot = _compiler.Compile(EdsCluster(ReviewsCluster, serviceName: "reviews-eds"), Endpoints("reviews-eds", ("10.0.0.7", 9080, 1)));

        Assert.Equal("10.0.0.7:9080", Assert.Single(snapshot.Clusters[ReviewsCluster].Endpoints).Endpoint.ToString());
    }

    [Fact]
    public void Compile_SecondPushOfTheSameEndpoint_ReusesItsLiveState()
    {
        var first = _compiler.Compile(EdsCluster(ReviewsCluster), Endpoints(ReviewsCluster, ("10.0.0.1", 9080, 1)));
        var endpoint = first.Clusters[ReviewsCluster].Endpoints[0].Endpoint;
        endpoint.RequestStarted();

        var second = _compiler.Compile(EdsCluster(ReviewsCluster), Endpoints(ReviewsCluster, ("10.0.0.1", 9080, 1), ("10.0.0.2", 9080, 1)));

        Assert.Same(endpoint, second.Clusters[ReviewsCluster].Endpoints[0].Endpoint);
        Assert.Same(first.Clusters[ReviewsCluster].Balancer, second.Clusters[ReviewsCluster].Balancer);
        Assert.Same(first.Clusters[ReviewsCluster].Invoker, second.Clusters[ReviewsCluster].Invoker);
    }

    [Fact]
    public void Compile_UnknownNetworkFilter_ThrowsNamingListenerAndFilters()
    {
        var tcp = new Filter { Name = "envoy.filters.network.mongo_proxy", TypedConfig = Any.Pack(new Duration()) };

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.Compile(Listener("mysql_3306", 3306, "127.0.0.1", tcp)));

        Assert.Contains("listener mysql_3306", error.Message, StringComparison.Ordinal);
        Assert.Contains("filters [", error.Message, StringComparison.Ordinal);
        Assert.Contains("google.protobuf.Duration", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_UnknownHttpFilter_ThrowsNamingListenerAndHttpFilter()
    {
        var unknown = new HttpFilter { Name = "envoy.filters.http.buffer", TypedConfig = Any.Pack(new Duration()) };
        var listener = Listener("outbound_http", 15001, "127.0.0.1", HttpConnectionManagerFilter(Hcm("outbound_http", "http_proxy", unknown)));

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.Compile(listener));

        Assert.Contains("listener outbound_http", error.Message, StringComparison.Ordinal);
        Assert.Contains("http filter envoy.filters.http.buffer", error.Message, StringComparison.Ordinal);
        Assert.Contains("is_optional", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_FaultHttpFilter_IsCompiledIntoTheChainBeforeTheRouter()
    {
        var fault = new HttpFilter { Name = "envoy.filters.http.fault", TypedConfig = Any.Pack(new HTTPFault()) };
        var snapshot = _compiler.Compile(Listener("outbound_http", 15001, "127.0.0.1", HttpConnectionManagerFilter(Hcm("outbound_http", "http_proxy", fault))));

        var filters = snapshot.Listeners["outbound_http"].ChainFor(15001)!.Filters;
        Assert.Equal(["envoy.filters.http.fault", "envoy.filters.http.router"], filters.Select(f => f.Filter.Name));
    }

    [Fact]
    public void Compile_UnimplementedRouteField_IsRejectedNotSilentlyAcked()
    {
        var route = ClusterRoute("with-grpc-match", Prefix("/"), ReviewsCluster);
        route.Match.Grpc = new RouteMatch.Types.GrpcRouteMatchOptions();

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.Compile(HttpListener("outbound_http", 15001, "http_proxy"), RouteConfig("http_proxy", VirtualHost("reviews", ["*"], route))));

        Assert.Contains("route with-grpc-match", error.Message, StringComparison.Ordinal);
        Assert.Contains("envoy.config.route.v3.RouteMatch field grpc", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_UnimplementedClusterField_IsRejectedNamingTheField()
    {
        var cluster = EdsCluster(ReviewsCluster);
        cluster.LeastRequestLbConfig = new Cluster.Types.LeastRequestLbConfig { ChoiceCount = 3 };

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.Compile(cluster));

        Assert.Contains($"cluster {ReviewsCluster}", error.Message, StringComparison.Ordinal);
        Assert.Contains("least_request_lb_config", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_EdsOnlyUpdate_ReusesListenersAndRouteTables()
    {
        IMessage[] rest = [HttpListener("outbound_http", 15001, "http_proxy"),
            RouteConfig("http_proxy", VirtualHost("reviews", ["*"], ClusterRoute("default", Prefix("/"), ReviewsCluster))), EdsCluster(ReviewsCluster)];
        var first = _compiler.Compile([.. rest, Endpoints(ReviewsCluster, ("10.0.0.1", 9080, 1))]);
        var handle = first.Clusters[ReviewsCluster];
        var config = handle.Current!.Config;

        var second = _compiler.Compile([.. rest, Endpoints(ReviewsCluster, ("10.0.0.1", 9080, 1), ("10.0.0.2", 9080, 1))]);

        Assert.Same(first.Listeners["outbound_http"], second.Listeners["outbound_http"]);
        Assert.Same(first.RouteTables["http_proxy"], second.RouteTables["http_proxy"]);
        Assert.Same(handle, second.Clusters[ReviewsCluster]);
        Assert.Same(config, handle.Current!.Config);
        Assert.Equal(2, handle.Current.Hosts.All.Count);
    }

    [Fact]
    public void Compile_ChangedRouteConfiguration_RecompilesOnlyThatTable()
    {
        var first = _compiler.Compile(HttpListener("a", 15001, "ra"), HttpListener("b", 15002, "rb"),
            RouteConfig("ra", VirtualHost("a", ["*"], ClusterRoute("default", Prefix("/"), ReviewsCluster))),
            RouteConfig("rb", VirtualHost("b", ["*"], ClusterRoute("default", Prefix("/"), ReviewsCluster))));

        var second = _compiler.Compile(HttpListener("a", 15001, "ra"), HttpListener("b", 15002, "rb"),
            RouteConfig("ra", VirtualHost("a", ["*"], ClusterRoute("default", Prefix("/"), ReviewsCluster))),
            RouteConfig("rb", VirtualHost("b", ["*"], ClusterRoute("changed", Prefix("/v2"), ReviewsCluster))));

        Assert.Same(first.RouteTables["ra"], second.RouteTables["ra"]);
        Assert.Same(first.Listeners["a"], second.Listeners["a"]);
        Assert.NotSame(first.RouteTables["rb"], second.RouteTables["rb"]);
        Assert.NotSame(first.Listeners["b"], second.Listeners["b"]);
    }

    [Fact]
    public void Compile_OptionalFaultHttpFilter_IsSkipped()
    {
        var fault = new HttpFilter { Name = "envoy.filters.http.fault", TypedConfig = Any.Pack(new HTTPFault()), IsOptional = true };
        var listener = Listener("outbound_http", 15001, "127.0.0.1", HttpConnectionManagerFilter(Hcm("outbound_http", "http_proxy", fault)));

        var snapshot = _compiler.Compile(listener);

        Assert.Contains("outbound_http", snapshot.Listeners.Keys);
    }

    [Fact]
    public void Compile_RouterNotLast_ThrowsNamingListener()
    {
        var hcm = Hcm("outbound_http", "http_proxy");
        hcm.HttpFilters.Add(new HttpFilter { Name = "envoy.filters.http.fault", TypedConfig = Any.Pack(new HTTPFault()), IsOptional = true });

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.Compile(Listener("outbound_http", 15001, "127.0.0.1", HttpConnectionManagerFilter(hcm))));

        Assert.Contains("listener outbound_http", error.Message, StringComparison.Ordinal);
        Assert.Contains("envoy.filters.http.router", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_DirectResponseRoute_CompilesStatusAndBody()
    {
        var route = new Route { Name = "block-admin", Match = Prefix("/admin"), DirectResponse = new DirectResponseAction { Status = 403, Body = new Envoy.Config.Core.V3.DataSource { InlineString = "no" } } };

        var entry = _compiler.CompileRoute(route);

        Assert.Equal(Bowline.Proxy.Routing.RouteKind.DirectResponse, entry.Kind);
        Assert.Equal((403, "no"), (entry.DirectResponse!.Status, entry.DirectResponse.Body));
    }

    [Fact]
    public void Compile_DirectResponseStatusOutOfRange_ThrowsNamingRouteAndField()
    {
        var route = new Route { Name = "bad", Match = Prefix("/"), DirectResponse = new DirectResponseAction { Status = 9000 } };

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.CompileRoute(route));

        Assert.Contains("route bad", error.Message, StringComparison.Ordinal);
        Assert.Contains("direct_response.status 9000", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_OriginalDstCluster_ThrowsNamingClusterAndType()
    {
        var cluster = new Cluster { Name = "outbound|443||api.example.com", Type = Cluster.Types.DiscoveryType.OriginalDst };

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.Compile(cluster));

        Assert.Contains("cluster outbound|443||api.example.com", error.Message, StringComparison.Ordinal);
        Assert.Contains("type OriginalDst", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Compile_StrictDnsCluster_ResolvesEveryAddressOfItsNames()
    {
        _compiler.Dns.Set("api.example.com", "10.1.0.1", "10.1.0.2");
        var cluster = DnsCluster("outbound|80||api.example.com", Cluster.Types.DiscoveryType.StrictDns, "api.example.com");

        var snapshot = _compiler.Compile(cluster);
        var handle = snapshot.Clusters[cluster.Name];
        _compiler.Time.Advance(TimeSpan.FromMilliseconds(1));
        await handle.WaitUntilAsync(c => c?.Hosts.All.Count == 2, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(["10.1.0.1:80", "10.1.0.2:80"], handle.Current!.Hosts.All.Select(h => h.Endpoint.ToString()));
        Assert.Equal(1, _compiler.Stats.ValueOf($"cluster.{cluster.Name}.update_success"));
    }

    [Fact]
    public async Task Compile_LogicalDnsCluster_KeepsOneAddress()
    {
        _compiler.Dns.Set("api.example.com", "10.1.0.1", "10.1.0.2");
        var cluster = DnsCluster("outbound|80||api.example.com", Cluster.Types.DiscoveryType.LogicalDns, "api.example.com");

        var handle = _compiler.Compile(cluster).Clusters[cluster.Name];
        _compiler.Time.Advance(TimeSpan.FromMilliseconds(1));
        await handle.WaitUntilAsync(c => c?.Hosts.All.Count == 1, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal("10.1.0.1:80", handle.Current!.Hosts.All.Single().Endpoint.ToString());
    }

    [Fact]
    public async Task Compile_DnsNameThatDoesNotResolve_CountsTheFailureAndServesNoHost()
    {
        var cluster = DnsCluster("outbound|80||nowhere.example.com", Cluster.Types.DiscoveryType.StrictDns, "nowhere.example.com");

        var handle = _compiler.Compile(cluster).Clusters[cluster.Name];
        _compiler.Time.Advance(TimeSpan.FromMilliseconds(1));
        await handle.DnsRefresher!.LastRefresh!.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Empty(handle.Current!.Hosts.All);
        Assert.Equal(1, _compiler.Stats.ValueOf($"cluster.{cluster.Name}.update_failure"));
    }

    [Fact]
    public void Compile_LogicalDnsWithTwoNames_ThrowsNamingTheCluster()
    {
        var cluster = DnsCluster("outbound|80||api.example.com", Cluster.Types.DiscoveryType.LogicalDns, "a.example.com", "b.example.com");

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.Compile(cluster));

        Assert.Contains("LOGICAL_DNS cluster resolves exactly one name", error.Message, StringComparison.Ordinal);
    }

    private static Cluster DnsCluster(string name, Cluster.Types.DiscoveryType type, params string[] hosts)
    {
        var locality = new Envoy.Config.Endpoint.V3.LocalityLbEndpoints();
        foreach (var host in hosts)
        {
            locality.LbEndpoints.Add(new Envoy.Config.Endpoint.V3.LbEndpoint { Endpoint = new Envoy.Config.Endpoint.V3.Endpoint { Address = new Envoy.Config.Core.V3.Address { SocketAddress = new Envoy.Config.Core.V3.SocketAddress { Address = host, PortValue = 80 } } } });
        }
        return new Cluster
        {
            Name = name,
            Type = type,
            ConnectTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
            DnsLookupFamily = Cluster.Types.DnsLookupFamily.V4Only,
            LoadAssignment = new Envoy.Config.Endpoint.V3.ClusterLoadAssignment { ClusterName = name, Endpoints = { locality } },
        };
    }

    [Theory]
    [InlineData("/api/(v1")]
    [InlineData("/api/[a-")]
    [InlineData(@"/(a)\1")]
    public void Compile_BadPathRegex_ThrowsNamingRouteAndField(string regex)
    {
        var route = ClusterRoute("versioned", new RouteMatch { SafeRegex = new RegexMatcher { Regex = regex } }, ReviewsCluster);

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.CompileRoute(route));

        Assert.Contains("route versioned", error.Message, StringComparison.Ordinal);
        Assert.Contains("match.safe_regex", error.Message, StringComparison.Ordinal);
        Assert.Contains(regex, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_BadHeaderRegex_ThrowsNamingRouteAndHeader()
    {
        var match = new RouteMatch { Prefix = "/", Headers = { new HeaderMatcher { Name = "x-version", StringMatch = new StringMatcher { SafeRegex = new RegexMatcher { Regex = "v(" } } } } };

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.CompileRoute(ClusterRoute("versioned", match, ReviewsCluster)));

        Assert.Contains("route versioned", error.Message, StringComparison.Ordinal);
        Assert.Contains("header x-version", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_EndpointWithHostname_ThrowsNamingClusterAndAddress()
    {
        var error = Assert.Throws<ProxyConfigException>(() => _compiler.Compile(
            EdsCluster(ReviewsCluster),
            Endpoints(ReviewsCluster, ("reviews.default.svc.cluster.local", 9080, 1))));

        Assert.Contains($"cluster {ReviewsCluster}", error.Message, StringComparison.Ordinal);
        Assert.Contains("endpoint address 'reviews.default.svc.cluster.local'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_ListenerAddressIsAHostname_ThrowsNamingListener()
    {
        var error = Assert.Throws<ProxyConfigException>(() => _compiler.Compile(HttpListener("outbound_http", 15001, "http_proxy", ip: "localhost")));

        Assert.Contains("listener outbound_http", error.Message, StringComparison.Ordinal);
        Assert.Contains("'localhost' is not an IP address", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_TwoListenersOnOneAddress_ThrowsNamingBothAndTheAddress()
    {
        var error = Assert.Throws<ProxyConfigException>(() => _compiler.Compile(
            HttpListener("first", 15001, "http_proxy"),
            HttpListener("second", 15001, "http_proxy")));

        Assert.Contains("listener first", error.Message, StringComparison.Ordinal);
        Assert.Contains("listener second", error.Message, StringComparison.Ordinal);
        Assert.Contains("address 127.0.0.1:15001", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_UnsupportedLbPolicy_ThrowsNamingThePolicy()
    {
        var error = Assert.Throws<ProxyConfigException>(() => _compiler.Compile(EdsCluster(ReviewsCluster, policy: Cluster.Types.LbPolicy.ClusterProvided)));

        Assert.Contains("lb_policy ClusterProvided", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_UpstreamTls_ThrowsNamingClusterAndTransportSocket()
    {
        var cluster = EdsCluster(ReviewsCluster);
        cluster.TransportSocket = new Envoy.Config.Core.V3.TransportSocket { Name = "envoy.transport_sockets.tls" };

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.Compile(cluster));

        Assert.Contains($"cluster {ReviewsCluster}", error.Message, StringComparison.Ordinal);
        Assert.Contains("transport_socket", error.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _compiler.Dispose();
}
