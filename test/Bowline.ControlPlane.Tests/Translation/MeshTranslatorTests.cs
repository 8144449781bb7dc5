using Bowline.ControlPlane.Snapshots;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>Targeted checks of translation, each naming the Istio behaviour it keeps; the golden files cover the rest.</summary>
public sealed class MeshTranslatorTests
{
    private static readonly ProxyNode Sidecar = ProxyNode.From(TestNodes.ProductpageSidecar());
    private static readonly ProxyNode Gateway = ProxyNode.From(TestNodes.IngressGateway());
    private static readonly ProxyNode Proxyless = ProxyNode.From(TestNodes.ProxylessGrpc());

    [Fact]
    public void From_ProductpageSidecarNode_ReadsExplicitModeMetadata()
    {
        Assert.Equal(ProxyKind.Sidecar, Sidecar.Kind);
        Assert.Equal("productpage-v1", Sidecar.Name);
        Assert.Equal("default", Sidecar.Namespace);
        Assert.Equal("v1", Sidecar.Labels["version"]);
        Assert.Equal("127.0.0.1", Sidecar.BindAddress);
        Assert.Equal(15001, Sidecar.OutboundPort);
        Assert.Equal(new InboundPort(9080, 15006, 19080), Assert.Single(Sidecar.InboundPorts));
    }

    [Fact]
    public void From_RouterIdAndGrpcGenerator_SelectGatewayAndProxylessKinds()
    {
        Assert.Equal(ProxyKind.Gateway, Gateway.Kind);
        Assert.Equal("istio-ingressgateway", Gateway.Name);
        Assert.Equal("istio-system", Gateway.Namespace);
        Assert.Equal(18080, Gateway.GatewayPorts[8080]);
        Assert.Equal(ProxyKind.ProxylessGrpc, Proxyless.Kind);
        Assert.Equal("default", Proxyless.Namespace);
    }

    [Fact]
    public void From_NodeWithoutId_ThrowsNamingNodeId()
    {
        var node = TestNodes.ProductpageSidecar();
        node.Id = "";

        var e = Assert.Throws<FormatException>(() => ProxyNode.From(node));
        Assert.Contains("node.id", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void From_MalformedInboundPorts_ThrowsNamingTheMetadataKey()
    {
        var node = TestNodes.ProductpageSidecar();
        node.Metadata.Fields["BOWLINE_INBOUND_PORTS"].StructValue.Fields["9080"] = Google.Protobuf.WellKnownTypes.Value.ForString("15006");

        var e = Assert.Throws<FormatException>(() => ProxyNode.From(node));
        Assert.Contains("BOWLINE_INBOUND_PORTS.9080", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("v1", 15301)]
    [InlineData("v2", 15302)]
    [InlineData("v3", 15303)]
    public void Translate_ReviewsSubsets_EachSubsetClusterHasItsVersionsEndpoint(string subset, int port)
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(), Sidecar);

        var name = $"outbound|9080|{subset}|{Bookinfo.Reviews}";
        var cluster = Resource<Cluster>(snapshot, TypeUrls.Cluster, name);
        Assert.Equal(Cluster.Types.DiscoveryType.Eds, cluster.Type);
        Assert.Equal(name, cluster.EdsClusterConfig.ServiceName);
        Assert.NotNull(cluster.EdsClusterConfig.EdsConfig.Ads);
        var endpoint = Assert.Single(Assert.Single(Resource<ClusterLoadAssignment>(snapshot, TypeUrls.ClusterLoadAssignment, name).Endpoints).LbEndpoints);
        Assert.Equal(("127.0.0.1", (uint)port), (endpoint.Endpoint.Address.SocketAddress.Address, endpoint.Endpoint.Address.SocketAddress.PortValue));
    }

    [Fact]
    public void Translate_ServiceCluster_HasEveryVersionsEndpoint()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(), Sidecar);

        var assignment = Resource<ClusterLoadAssignment>(snapshot, TypeUrls.ClusterLoadAssignment, $"outbound|9080||{Bookinfo.Reviews}");
        Assert.Equal([15301u, 15302u, 15303u], assignment.Endpoints.Single().LbEndpoints.Select(e => e.Endpoint.Address.SocketAddress.PortValue));
    }

    [Fact]
    public void Translate_Endpoints_CarryIstiosWorkloadTelemetryLabel()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(), Sidecar);

        // Istio's AppendLbEndpointMetadata: name;namespace;canonical service;canonical revision;cluster, which a client's
        // metrics fall back to when no metadata was exchanged.
        var assignment = Resource<ClusterLoadAssignment>(snapshot, TypeUrls.ClusterLoadAssignment, $"outbound|9080||{Bookinfo.Reviews}");
        Assert.Equal(["reviews-v1;default;reviews;v1;Kubernetes", "reviews-v2;default;reviews;v2;Kubernetes", "reviews-v3;default;reviews;v3;Kubernetes"],
            assignment.Endpoints.Single().LbEndpoints.Select(e => e.Metadata.FilterMetadata["istio"].Fields["workload"].StringValue));
    }

    [Fact]
    public void Translate_SubsetWithoutWorkloads_HasAnEmptyAssignment()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(), Sidecar);

        Assert.Empty(Resource<ClusterLoadAssignment>(snapshot, TypeUrls.ClusterLoadAssignment, "outbound|9080|v2-mysql|ratings.default.svc.cluster.local").Endpoints);
    }

    [Fact]
    public void Translate_Sidecar_InboundClusterTargetsTheAppOnLoopback()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(), Sidecar);

        var cluster = Resource<Cluster>(snapshot, TypeUrls.Cluster, "inbound|9080||");
        var address = cluster.LoadAssignment.Endpoints.Single().LbEndpoints.Single().Endpoint.Address.SocketAddress;
        Assert.Equal(("127.0.0.1", 19080u), (address.Address, address.PortValue));
        var inbound = Resource<Listener>(snapshot, TypeUrls.Listener, IstioNames.VirtualInbound);
        Assert.Equal(("127.0.0.1", 15006u), (inbound.Address.SocketAddress.Address, inbound.Address.SocketAddress.PortValue));
    }

    [Fact]
    public void Translate_Sidecar_OutboundListenerUsesHttpProxyRoutesWithEveryNameForm()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(), Sidecar);

        var listener = Resource<Listener>(snapshot, TypeUrls.Listener, "127.0.0.1_15001");
        Assert.Equal(15001u, listener.Address.SocketAddress.PortValue);
        Assert.Equal(IstioNames.HttpProxyRoute, Hcm(listener).Rds.RouteConfigName);
        var reviews = VirtualHost(Resource<RouteConfiguration>(snapshot, TypeUrls.RouteConfiguration, IstioNames.HttpProxyRoute), $"{Bookinfo.Reviews}:9080");
        foreach (var form in new[] { "reviews", "reviews.default", "reviews.default.svc", Bookinfo.Reviews })
        {
            Assert.Contains(form, reviews.Domains);
            Assert.Contains($"{form}:9080", reviews.Domains);
        }
    }

    [Fact]
    public void Translate_Gateway_ListenerBindsTheNodesAddressAndMappedPort()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(), Gateway);

        var listener = Assert.Single(snapshot.Get(TypeUrls.Listener)!.Resources.Values).Message;
        var address = Assert.IsType<Listener>(listener).Address.SocketAddress;
        Assert.Equal(("127.0.0.1", 18080u), (address.Address, address.PortValue));
        Assert.Equal("http.8080", Hcm((Listener)listener).Rds.RouteConfigName);
    }

    [Fact]
    public void Translate_Gateway_RoutesTheBookinfoPathsToProductpage()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(), Gateway);

        var host = Assert.Single(Resource<RouteConfiguration>(snapshot, TypeUrls.RouteConfiguration, "http.8080").VirtualHosts);
        Assert.Equal(["*"], host.Domains);
        Assert.Equal(["/productpage", "/static", "/login", "/logout", "/api/v1/products"], host.Routes.Select(r => r.Match.HasPath ? r.Match.Path : r.Match.Prefix));
        Assert.All(host.Routes, r => Assert.Equal("outbound|9080||productpage.default.svc.cluster.local", r.Route_.Cluster));
    }

    [Fact]
    public void Translate_GatewayNotSelected_HasNoListeners()
    {
        var node = TestNodes.IngressGateway();
        node.Metadata.Fields["LABELS"].StructValue.Fields["istio"] = Google.Protobuf.WellKnownTypes.Value.ForString("egressgateway");

        var snapshot = MeshTranslator.Translate(Bookinfo.Index(), ProxyNode.From(node));

        Assert.Empty(snapshot.Get(TypeUrls.Listener)!.Resources);
        Assert.Empty(snapshot.Get(TypeUrls.RouteConfiguration)!.Resources);
    }

    [Fact]
    public void Translate_GatewayOnlyVirtualService_DoesNotApplyToSidecars()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(), Sidecar);

        var productpage = VirtualHost(Resource<RouteConfiguration>(snapshot, TypeUrls.RouteConfiguration, IstioNames.HttpProxyRoute), "productpage.default.svc.cluster.local:9080");
        var route = Assert.Single(productpage.Routes);
        Assert.Equal("/", route.Match.Prefix);
    }

    [Fact]
    public void Translate_ReviewsTestV2_JasonGoesToV2BeforeTheDefaultV1Route()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.WithTask("virtual-service-reviews-test-v2.yaml"), Sidecar);

        var routes = VirtualHost(Resource<RouteConfiguration>(snapshot, TypeUrls.RouteConfiguration, IstioNames.HttpProxyRoute), $"{Bookinfo.Reviews}:9080").Routes;
        Assert.Equal(2, routes.Count);
        var header = Assert.Single(routes[0].Match.Headers);
        Assert.Equal("end-user", header.Name);
        Assert.Equal("jason", header.StringMatch.Exact);
        Assert.Equal("/", routes[0].Match.Prefix);
        Assert.Equal($"outbound|9080|v2|{Bookinfo.Reviews}", routes[0].Route_.Cluster);
        Assert.Empty(routes[1].Match.Headers);
        Assert.Equal("/", routes[1].Match.Prefix);
        Assert.Equal($"outbound|9080|v1|{Bookinfo.Reviews}", routes[1].Route_.Cluster);
        Assert.Empty(snapshot.Warnings);
    }

    [Fact]
    public void Translate_ReviewsTestV2ForProxylessGrpc_SameRoutesInEveryNameFormsRouteConfig()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.WithTask("virtual-service-reviews-test-v2.yaml"), Proxyless);

        foreach (var name in new[] { "reviews:9080", "reviews.default:9080", "reviews.default.svc:9080", $"{Bookinfo.Reviews}:9080" })
        {
            var listener = Resource<Listener>(snapshot, TypeUrls.Listener, name);
            Assert.Equal(name, listener.ApiListener.ApiListener_.Unpack<HttpConnectionManager>().Rds.RouteConfigName);
            var host = Assert.Single(Resource<RouteConfiguration>(snapshot, TypeUrls.RouteConfiguration, name).VirtualHosts);
            Assert.Contains(name, host.Domains);
            Assert.Equal([$"outbound|9080|v2|{Bookinfo.Reviews}", $"outbound|9080|v1|{Bookinfo.Reviews}"], host.Routes.Select(r => r.Route_.Cluster));
            // gRFC A27 clients take no Envoy route timeout; they use max_stream_duration.
            Assert.All(host.Routes, r => Assert.Null(r.Route_.Timeout));
        }
    }

    [Fact]
    public void Translate_ProxylessClusters_AreRoundRobinEdsWithoutEnvoyOnlyOptions()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(), Proxyless);

        Assert.All(snapshot.Get(TypeUrls.Cluster)!.Resources.Values.Select(r => (Cluster)r.Message), c =>
        {
            Assert.Equal(Cluster.Types.DiscoveryType.Eds, c.Type);
            Assert.Equal(Cluster.Types.LbPolicy.RoundRobin, c.LbPolicy);
            Assert.NotNull(c.EdsClusterConfig.EdsConfig.Ads);
            Assert.Empty(c.TypedExtensionProtocolOptions);
        });
    }

    [Fact]
    public void Translate_Reviews80To20_WeightedClusters()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.WithTask("virtual-service-reviews-80-20.yaml"), Sidecar);

        var route = Assert.Single(VirtualHost(Resource<RouteConfiguration>(snapshot, TypeUrls.RouteConfiguration, IstioNames.HttpProxyRoute), $"{Bookinfo.Reviews}:9080").Routes);
        Assert.Equal(
            [($"outbound|9080|v1|{Bookinfo.Reviews}", 80u), ($"outbound|9080|v2|{Bookinfo.Reviews}", 20u)],
            route.Route_.WeightedClusters.Clusters.Select(c => (c.Name, c.Weight ?? 0)));
    }

    [Fact]
    public void Translate_RouteTimeout_BecomesTheEnvoyRouteTimeout()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index("""
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: reviews
            spec:
              hosts: [reviews]
              http:
              - timeout: 0.5s
                route:
                - destination:
                    host: reviews
                    subset: v2
            """), Sidecar);

        var route = Assert.Single(VirtualHost(Resource<RouteConfiguration>(snapshot, TypeUrls.RouteConfiguration, IstioNames.HttpProxyRoute), $"{Bookinfo.Reviews}:9080").Routes);
        Assert.Equal(TimeSpan.FromMilliseconds(500), route.Route_.Timeout.ToTimeSpan());
    }

    [Fact]
    public void Translate_NoTimeout_DisablesEnvoysDefaultAsIstioDoes()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(), Sidecar);

        var route = Assert.Single(VirtualHost(Resource<RouteConfiguration>(snapshot, TypeUrls.RouteConfiguration, IstioNames.HttpProxyRoute), $"{Bookinfo.Reviews}:9080").Routes);
        Assert.Equal(TimeSpan.Zero, route.Route_.Timeout.ToTimeSpan());
    }

    [Fact]
    public void Translate_RouteToUnknownHost_WarnsAndRoutesToBlackHoleCluster()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index("""
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: reviews
            spec:
              hosts: [reviews]
              http:
              - route:
                - destination:
                    host: reviewz
            """), Sidecar);

        var warning = Assert.Single(snapshot.Warnings);
        Assert.Contains("VirtualService default/reviews", warning, StringComparison.Ordinal);
        Assert.Contains("reviewz is not a known service", warning, StringComparison.Ordinal);
        var route = Assert.Single(VirtualHost(Resource<RouteConfiguration>(snapshot, TypeUrls.RouteConfiguration, IstioNames.HttpProxyRoute), $"{Bookinfo.Reviews}:9080").Routes);
        Assert.Equal(IstioNames.BlackHoleCluster, route.Route_.Cluster);
    }

    [Fact]
    public void Translate_SecondDestinationRuleForAHost_WarnsThatTheFirstApplies()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index("""
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata:
              name: reviews-extra
            spec:
              host: reviews
              subsets:
              - name: v9
                labels: {version: v9}
            """), Sidecar);

        var warning = Assert.Single(snapshot.Warnings);
        Assert.Contains("DestinationRule default/reviews-extra", warning, StringComparison.Ordinal);
        Assert.Contains("merge the two", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void Translate_RouteToUndefinedSubset_Warns()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index("""
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: reviews
            spec:
              hosts: [reviews]
              http:
              - route:
                - destination:
                    host: reviews
                    subset: v4
            """), Sidecar);

        Assert.Contains("subset v4 of reviews.default.svc.cluster.local is not defined", Assert.Single(snapshot.Warnings), StringComparison.Ordinal);
    }

    [Fact]
    public void Translate_TwoVirtualServicesForOneHost_FirstByNameAppliesAndTheOtherIsAWarning()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(
            File.ReadAllText(TestFiles.Bookinfo("tasks/virtual-service-reviews-v3.yaml")),
            File.ReadAllText(TestFiles.Bookinfo("tasks/virtual-service-reviews-80-20.yaml")).Replace("name: reviews", "name: reviews-canary", StringComparison.Ordinal)), Sidecar);

        var route = Assert.Single(VirtualHost(Resource<RouteConfiguration>(snapshot, TypeUrls.RouteConfiguration, IstioNames.HttpProxyRoute), $"{Bookinfo.Reviews}:9080").Routes);
        Assert.Equal($"outbound|9080|v3|{Bookinfo.Reviews}", route.Route_.Cluster);
        Assert.Contains("VirtualService default/reviews-canary", Assert.Single(snapshot.Warnings), StringComparison.Ordinal);
    }

    [Fact]
    public void Translate_ProxylessWithAServiceEntryHostEqualToAShortName_DoesNotThrow()
    {
        var index = Bookinfo.Index("""
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata:
              name: reviews-alias
            spec:
              hosts: [reviews]
              ports:
              - {number: 9080, name: http}
              resolution: STATIC
              endpoints:
              - address: 127.0.0.9
            """);

        var snapshot = MeshTranslator.Translate(index, Proxyless);

        Assert.Contains("reviews:9080", snapshot.Get(TypeUrls.Listener)!.Resources.Keys);
    }

    private static T Resource<T>(XdsSnapshot snapshot, string typeUrl, string name)
    {
        var resources = snapshot.Get(typeUrl)!.Resources;
        Assert.True(resources.TryGetValue(name, out var resource), $"no {TypeUrls.ShortName(typeUrl)} resource {name}; have {string.Join(", ", resources.Keys)}");
        return Assert.IsType<T>(resource.Message);
    }

    private static VirtualHost VirtualHost(RouteConfiguration route, string name) => route.VirtualHosts.Single(h => h.Name == name);

    private static HttpConnectionManager Hcm(Listener listener) =>
        listener.FilterChains.Single().Filters.Single().TypedConfig.Unpack<HttpConnectionManager>();
}
