using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Snapshots;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Listener.V3;
using Envoy.Extensions.Filters.Network.TcpProxy.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using static Bowline.ControlPlane.Tests.Infrastructure.TestCredentials;
using static Bowline.ControlPlane.Tests.Translation.MtlsExpectations;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>
/// TCP and TLS traffic translated into Envoy's tcp_proxy as Istio's pilot writes it (pilot/pkg/networking/core/
/// gateway.go, networkfilter.go): gateway TCP servers by tcp routes, PASSTHROUGH servers by the tls routes' sniHosts,
/// AUTO_PASSTHROUGH by the cluster the SNI names, TLS servers that terminate into tcp routes, and a sidecar's TCP
/// inbound ports under each PeerAuthentication mode.
/// </summary>
public sealed class TcpTranslationTests
{
    private static readonly ProxyNode Gateway = ProxyNode.From(TestNodes.IngressGateway());

    private const string MysqlService = """
        apiVersion: v1
        kind: Service
        metadata: {name: mysqldb, namespace: default}
        spec:
          selector: {app: mysqldb}
          ports: [{name: tcp, port: 3306}]
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: mysqldb-v1, namespace: default}
        spec:
          address: 127.0.0.1
          labels: {app: mysqldb, version: v1}
          ports: {tcp: 13306}
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: mysqldb, namespace: default}
        spec:
          host: mysqldb
          subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
        """;

    private static string GatewayYaml(string servers) => $"""
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {"{"}name: tcp-gateway, namespace: istio-system{"}"}
        spec:
          selector: {"{"}istio: ingressgateway{"}"}
          servers:
        {servers}
        """;

    private static string VirtualService(string name, string hosts, string body) => $"""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {"{"}name: {name}, namespace: default{"}"}
        spec:
          hosts: {hosts}
          gateways: [istio-system/tcp-gateway]
        {body}
        """;

    private static ServiceIndex Index(params string[] yaml) => Bookinfo.Index([MysqlService, .. yaml]);

    private static TcpProxy TcpProxyOf(FilterChain chain)
    {
        // Istio's stats filter comes first on every TCP chain; the tcp_proxy ends it.
        Assert.Equal(["istio.stats", "envoy.filters.network.tcp_proxy"], chain.Filters.Select(f => f.Name));
        var filter = chain.Filters[^1];
        return filter.TypedConfig.Unpack<TcpProxy>();
    }

    [Fact]
    public void Translate_TcpServerWithTcpRoute_IsOneChainToTheClusterNamedAsStatPrefix()
    {
        var snapshot = MeshTranslator.Translate(Index(
            GatewayYaml("  - {port: {number: 31400, name: tcp, protocol: TCP}, hosts: ['*']}"),
            VirtualService("mysql", "['*']", "  tcp:\n  - match: [{port: 31400}]\n    route: [{destination: {host: mysqldb.default.svc.cluster.local, port: {number: 3306}}}]")), Gateway);

        var listener = Resource<Listener>(snapshot, TypeUrls.Listener, "0.0.0.0_31400");
        Assert.Empty(listener.ListenerFilters);
        var chain = Assert.Single(listener.FilterChains);
        Assert.Equal(Json<TcpProxy>("""{"statPrefix": "outbound|3306||mysqldb.default.svc.cluster.local", "cluster": "outbound|3306||mysqldb.default.svc.cluster.local"}"""), TcpProxyOf(chain));
        // The TCP port's cluster exists, and speaks bytes: no HTTP protocol options.
        var cluster = Resource<Cluster>(snapshot, TypeUrls.Cluster, "outbound|3306||mysqldb.default.svc.cluster.local");
        Assert.Empty(cluster.TypedExtensionProtocolOptions);
        Assert.Contains("outbound|3306|v2|mysqldb.default.svc.cluster.local", snapshot.Get(TypeUrls.Cluster)!.Resources.Keys);
        Assert.DoesNotContain(snapshot.Warnings, w => w.Contains("mysqldb", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_WeightedTcpRoute_IsWeightedClustersWithoutTheZeroWeights_AndTheDestinationRulesTimeouts()
    {
        var rule = """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: mysqldb, namespace: default}
            spec:
              host: mysqldb
              trafficPolicy: {connectionPool: {tcp: {idleTimeout: 30s, maxConnectionDuration: 1h}}}
              subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}, {name: v3, labels: {version: v3}}]
            """;
        var index = Bookinfo.Index(MysqlService.Split("---")[0], MysqlService.Split("---")[1], rule,
            GatewayYaml("  - {port: {number: 31400, name: tcp, protocol: TCP}, hosts: ['*']}"),
            VirtualService("mysql", "['*']", """
                  tcp:
                  - route:
                    - {destination: {host: mysqldb, subset: v1}, weight: 1000}
                    - {destination: {host: mysqldb, subset: v2}, weight: 1}
                    - {destination: {host: mysqldb, subset: v3}, weight: 0}
                """));

        var snapshot = MeshTranslator.Translate(index, Gateway);

        var chain = Assert.Single(Resource<Listener>(snapshot, TypeUrls.Listener, "0.0.0.0_31400").FilterChains);
        Assert.Equal(Json<TcpProxy>("""
            {
              "statPrefix": "mysql.default",
              "weightedClusters": {"clusters": [
                {"name": "outbound|3306|v1|mysqldb.default.svc.cluster.local", "weight": 1000},
                {"name": "outbound|3306|v2|mysqldb.default.svc.cluster.local", "weight": 1}
              ]},
              "idleTimeout": "30s",
              "maxDownstreamConnectionDuration": "3600s"
            }
            """), TcpProxyOf(chain));
    }

    [Fact]
    public void Translate_TcpServerWithoutARoute_HasNoListenerAndSaysWhy()
    {
        var snapshot = MeshTranslator.Translate(Index(GatewayYaml("  - {port: {number: 31400, name: tcp, protocol: TCP}, hosts: ['*']}")), Gateway);

        Assert.DoesNotContain("0.0.0.0_31400", snapshot.Get(TypeUrls.Listener)!.Resources.Keys);
        Assert.Contains(snapshot.Warnings, w => w.Contains("gateway port 31400", StringComparison.Ordinal) && w.Contains("tcp routes", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_TcpRouteToAnUnknownPort_GoesToTheBlackHoleWithAWarning()
    {
        var snapshot = MeshTranslator.Translate(Index(
            GatewayYaml("  - {port: {number: 31400, name: tcp, protocol: TCP}, hosts: ['*']}"),
            VirtualService("mysql", "['*']", "  tcp:\n  - route: [{destination: {host: mysqldb, port: {number: 3307}}}]")), Gateway);

        Assert.Equal(IstioNames.BlackHoleCluster, TcpProxyOf(Assert.Single(Resource<Listener>(snapshot, TypeUrls.Listener, "0.0.0.0_31400").FilterChains)).Cluster);
        Assert.Contains(snapshot.Warnings, w => w.Contains("has no TCP port 3307", StringComparison.Ordinal) && w.Contains("connections routed to it are closed", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_Passthrough_IsAChainPerTlsRouteBySni_WithoutTerminatingTls()
    {
        var snapshot = MeshTranslator.Translate(Index(
            GatewayYaml("  - {port: {number: 443, name: tls, protocol: TLS}, hosts: ['*.example.com'], tls: {mode: PASSTHROUGH}}"),
            VirtualService("nginx", "[nginx.example.com]", "  tls:\n  - match: [{port: 443, sniHosts: [nginx.example.com]}]\n    route: [{destination: {host: productpage, port: {number: 9080}}}]"),
            VirtualService("db", "['*.db.example.com']", "  tls:\n  - match: [{sniHosts: [a.db.example.com, b.db.example.com]}]\n    route: [{destination: {host: mysqldb}}]\n  - match: [{port: 8443, sniHosts: [c.db.example.com]}]\n    route: [{destination: {host: mysqldb}}]")), Gateway);

        var listener = Resource<Listener>(snapshot, TypeUrls.Listener, "0.0.0.0_443");
        Assert.Equal([TlsContexts.TlsInspectorFilter], listener.ListenerFilters.Select(f => f.Name));
        // VirtualServices in name order; the route whose match names another port selects nothing here.
        Assert.Equal([["a.db.example.com", "b.db.example.com"], ["nginx.example.com"]], listener.FilterChains.Select(c => c.FilterChainMatch.ServerNames.ToArray()));
        Assert.All(listener.FilterChains, c => Assert.Null(c.TransportSocket));
        Assert.Equal(["outbound|3306||mysqldb.default.svc.cluster.local", "outbound|9080||productpage.default.svc.cluster.local"], listener.FilterChains.Select(c => TcpProxyOf(c).Cluster));
    }

    [Fact]
    public void Translate_PassthroughSniClaimedTwice_TheFirstRouteKeepsIt()
    {
        var snapshot = MeshTranslator.Translate(Index(
            GatewayYaml("  - {port: {number: 443, name: tls, protocol: TLS}, hosts: ['*'], tls: {mode: PASSTHROUGH}}"),
            VirtualService("a", "[x.example.com]", "  tls:\n  - match: [{sniHosts: [x.example.com]}]\n    route: [{destination: {host: mysqldb}}]"),
            VirtualService("b", "[x.example.com]", "  tls:\n  - match: [{sniHosts: [x.example.com]}]\n    route: [{destination: {host: productpage}}]")), Gateway);

        var chain = Assert.Single(Resource<Listener>(snapshot, TypeUrls.Listener, "0.0.0.0_443").FilterChains);
        Assert.Equal("default/a.tls[0]", chain.Name);
        Assert.Contains(snapshot.Warnings, w => w.Contains("VirtualService default/b", StringComparison.Ordinal) && w.Contains("already serves every one of its server names", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_PassthroughAndHttpsOnOnePort_AreToldApartBySni()
    {
        var servers = """
              - {port: {number: 443, name: https, protocol: HTTPS}, hosts: [bookinfo.example.com], tls: {mode: SIMPLE, credentialName: bookinfo-credential}}
              - {port: {number: 443, name: tls, protocol: TLS}, hosts: [db.example.com], tls: {mode: PASSTHROUGH}}
            """;
        var snapshot = MeshTranslator.Translate(Index(
            GatewayYaml(servers),
            TlsSecret("bookinfo-credential", "istio-system", Leaf("bookinfo.example.com")),
            VirtualService("db", "[db.example.com]", "  tls:\n  - match: [{sniHosts: [db.example.com]}]\n    route: [{destination: {host: mysqldb}}]")), Gateway);

        var chains = Resource<Listener>(snapshot, TypeUrls.Listener, "0.0.0.0_443").FilterChains;
        Assert.Equal([["bookinfo.example.com"], ["db.example.com"]], chains.Select(c => c.FilterChainMatch.ServerNames.ToArray()));
        Assert.NotNull(chains[0].TransportSocket);
        Assert.Null(chains[1].TransportSocket);
        Assert.Equal("outbound|3306||mysqldb.default.svc.cluster.local", TcpProxyOf(chains[1]).Cluster);
    }

    [Fact]
    public void Translate_TlsServerThatTerminates_ForwardsTheDecryptedBytesByTheTcpRoute()
    {
        var snapshot = MeshTranslator.Translate(Index(
            GatewayYaml("  - {port: {number: 443, name: tls-db, protocol: TLS}, hosts: [db.example.com], tls: {mode: SIMPLE, credentialName: db-credential}}"),
            TlsSecret("db-credential", "istio-system", Leaf("db.example.com")),
            VirtualService("db", "[db.example.com]", "  tcp:\n  - route: [{destination: {host: mysqldb}}]")), Gateway);

        var chain = Assert.Single(Resource<Listener>(snapshot, TypeUrls.Listener, "0.0.0.0_443").FilterChains);
        Assert.Equal(["db.example.com"], chain.FilterChainMatch.ServerNames);
        var tls = chain.TransportSocket.TypedConfig.Unpack<DownstreamTlsContext>();
        Assert.Equal("kubernetes://db-credential", Assert.Single(tls.CommonTlsContext.TlsCertificateSdsSecretConfigs).Name);
        Assert.Equal("outbound|3306||mysqldb.default.svc.cluster.local", TcpProxyOf(chain).Cluster);
    }

    [Fact]
    public void Translate_AutoPassthrough_IsAChainPerClusterByIstiosSni_OnlyForMeshAlpns()
    {
        var snapshot = MeshTranslator.Translate(Index(GatewayYaml("  - {port: {number: 15443, name: tls, protocol: TLS}, hosts: ['*.local'], tls: {mode: AUTO_PASSTHROUGH}}")), Gateway);

        var chains = Resource<Listener>(snapshot, TypeUrls.Listener, "0.0.0.0_15443").FilterChains;
        var mysql = Assert.Single(chains, c => c.FilterChainMatch.ServerNames.SequenceEqual(["outbound_.3306_.v2_.mysqldb.default.svc.cluster.local"]));
        Assert.Equal(TlsContexts.IstioMtlsAlpns, mysql.FilterChainMatch.ApplicationProtocols);
        Assert.Null(mysql.TransportSocket);
        // Istio's SNI-DNAT cluster, named by the SNI: the client's mTLS passes through it untouched.
        Assert.Equal("outbound_.3306_.v2_.mysqldb.default.svc.cluster.local", TcpProxyOf(mysql).Cluster);
        // Every port and subset of every in-mesh service the hosts admit: reviews' three subsets and its plain cluster.
        Assert.Equal(4, chains.Count(c => c.FilterChainMatch.ServerNames[0].EndsWith("_.reviews.default.svc.cluster.local", StringComparison.Ordinal)));
    }

    [Fact]
    public void Translate_AutoPassthroughWithMeshMtls_ClustersOriginateNoTls_AndHoldOnlySidecarEndpoints()
    {
        var plainReviews = """
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: reviews-legacy, namespace: default}
            spec:
              address: 10.0.0.9
              labels: {app: reviews, version: v1}
              ports: {http: 9080}
            """;
        var index = Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries, plainReviews, GatewayYaml("  - {port: {number: 15443, name: tls, protocol: TLS}, hosts: ['*.local'], tls: {mode: AUTO_PASSTHROUGH}}"));
        var snapshot = MeshTranslator.Translate(index, Gateway);

        var cluster = Resource<Cluster>(snapshot, TypeUrls.Cluster, "outbound_.9080_.v1_.reviews.default.svc.cluster.local");
        Assert.Null(cluster.TransportSocket);
        Assert.Empty(cluster.TransportSocketMatches);
        // The ordinary cluster of the same subset does originate mesh mTLS: the two must not be confused.
        Assert.NotEmpty(Resource<Cluster>(snapshot, TypeUrls.Cluster, "outbound|9080|v1|reviews.default.svc.cluster.local").TransportSocketMatches);
        var endpoints = Resource<Envoy.Config.Endpoint.V3.ClusterLoadAssignment>(snapshot, TypeUrls.ClusterLoadAssignment, "outbound_.9080_.v1_.reviews.default.svc.cluster.local");
        Assert.DoesNotContain(endpoints.Endpoints.SelectMany(l => l.LbEndpoints), e => e.Endpoint.Address.SocketAddress.Address == "10.0.0.9");
        Assert.Single(endpoints.Endpoints.SelectMany(l => l.LbEndpoints));
    }

    [Fact]
    public void Translate_SidecarTcpPorts_SkipTheInspectorsTheyDoNotNeed()
    {
        var disable = """
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: mysqldb, namespace: default}
            spec:
              selector: {matchLabels: {app: mysqldb}}
              portLevelMtls: {3306: {mode: DISABLE}}
            """;
        var node = ProxyNode.From(TestNodes.Sidecar("mysqldb", "v1", 3306, 9080));
        var snapshot = MeshTranslator.Translate(Bookinfo.MtlsIndex(MysqlSidecarEntries, MysqlService.Split("---")[0], disable), node);

        var listener = Resource<Listener>(snapshot, TypeUrls.Listener, IstioNames.VirtualInbound);
        var port = (uint)TestNodes.SidecarListenPort(3306);
        // A server-first protocol on the DISABLE TCP port is not held for a first byte by either inspector.
        Assert.Equal(port, (uint)listener.ListenerFilters[0].FilterDisabled.DestinationPortRange.Start);
        Assert.Equal(port, (uint)listener.ListenerFilters[1].FilterDisabled.DestinationPortRange.Start);
        Assert.Equal(port + 1, (uint)listener.ListenerFilters[1].FilterDisabled.DestinationPortRange.End);
    }

    [Fact]
    public void Translate_GatewayServerHostInAnotherNamespace_DoesNotBindTheVirtualService()
    {
        var snapshot = MeshTranslator.Translate(Index(
            GatewayYaml("  - {port: {number: 31400, name: tcp, protocol: TCP}, hosts: ['other/*']}"),
            VirtualService("mysql", "['*']", "  tcp:\n  - route: [{destination: {host: mysqldb}}]")), Gateway);

        Assert.DoesNotContain("0.0.0.0_31400", snapshot.Get(TypeUrls.Listener)!.Resources.Keys);
    }

    private static readonly string MysqlSidecarEntries = Bookinfo.SidecarWorkloadEntries + """
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: mysqldb-v1, namespace: default}
        spec:
          address: 127.0.0.1
          labels: {app: mysqldb, version: v1}
          ports: {tcp: 13306}
          serviceAccount: mysqldb
        """;

    private static string PeerAuthentication(string mode) => $"""
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {"{"}name: default, namespace: default{"}"}
        spec: {"{"}mtls: {"{"}mode: {mode}{"}"}{"}"}
        """;

    private static IReadOnlyList<FilterChain> InboundChains(XdsSnapshot snapshot) => Resource<Listener>(snapshot, TypeUrls.Listener, IstioNames.VirtualInbound).FilterChains;

    [Fact]
    public void Translate_SidecarTcpPortWithoutMtls_IsATcpProxyToTheApp()
    {
        var node = ProxyNode.From(TestNodes.Sidecar("mysqldb", "v1", 3306));
        var snapshot = MeshTranslator.Translate(Index(), node);

        var chain = Assert.Single(InboundChains(snapshot));
        Assert.Equal(Json<TcpProxy>("""{"statPrefix": "inbound|3306||", "cluster": "inbound|3306||"}"""), TcpProxyOf(chain));
        Assert.Empty(Resource<Cluster>(snapshot, TypeUrls.Cluster, "inbound|3306||").TypedExtensionProtocolOptions);
    }

    [Theory]
    [InlineData("STRICT", new[] { "tls+mesh-mtls" })]
    [InlineData("PERMISSIVE", new[] { "tls+mesh-mtls", "tls", "raw_buffer" })]
    [InlineData("DISABLE", new[] { "raw_buffer" })]
    public void Translate_SidecarTcpPortUnderPeerAuthentication_HasIstiosTcpChains(string mode, string[] expected)
    {
        var node = ProxyNode.From(TestNodes.Sidecar("mysqldb", "v1", 3306));
        var snapshot = MeshTranslator.Translate(Bookinfo.MtlsIndex(MysqlSidecarEntries, MysqlService.Split("---")[0], PeerAuthentication(mode)), node);

        var chains = InboundChains(snapshot);
        // A PERMISSIVE TCP port also forwards a client's own TLS (no mesh ALPN) to the app untouched.
        Assert.Equal(expected, chains.Select(c => c.FilterChainMatch.TransportProtocol + (c.TransportSocket is null ? "" : "+mesh-mtls")));
        Assert.All(chains, c => Assert.Equal("inbound|3306||", TcpProxyOf(c).Cluster));
    }

    private static string Policy(string action, string rules) => $$$"""
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: mysql-{{{action.ToLowerInvariant()}}}, namespace: default}
        spec:
          selector: {matchLabels: {app: mysqldb}}
          action: {{{action}}}
          rules: {{{rules}}}
        """;

    private static Envoy.Extensions.Filters.Network.Rbac.V3.RBAC NetworkRbacOf(Envoy.Config.Listener.V3.Filter filter)
    {
        Assert.Equal("envoy.filters.network.rbac", filter.Name);
        return filter.TypedConfig.Unpack<Envoy.Extensions.Filters.Network.Rbac.V3.RBAC>();
    }

    [Fact]
    public void Translate_AllowPolicyOverATcpPort_IsNetworkRbacBeforeTheTcpProxy()
    {
        var node = ProxyNode.From(TestNodes.Sidecar("mysqldb", "v1", 3306));
        var snapshot = MeshTranslator.Translate(Index(Policy("ALLOW", "[{from: [{source: {principals: [cluster.local/ns/default/sa/bookinfo-ratings]}}], to: [{operation: {ports: ['3306']}}]}]")), node);

        var chain = Assert.Single(InboundChains(snapshot));
        Assert.Equal(["envoy.filters.network.rbac", "istio.stats", "envoy.filters.network.tcp_proxy"], chain.Filters.Select(f => f.Name));
        Assert.Equal(Json<Envoy.Extensions.Filters.Network.Rbac.V3.RBAC>("""
            {
              "statPrefix": "tcp.",
              "shadowRulesStatPrefix": "istio_dry_run_allow_",
              "rules": {"action": "ALLOW", "policies": {"ns[default]-policy[mysql-allow]-rule[0]": {
                "permissions": [{"andRules": {"rules": [{"orRules": {"rules": [{"destinationPort": LISTEN_PORT}]}}]}}],
                "principals": [{"andIds": {"ids": [{"orIds": {"ids": [{"authenticated": {"principalName": {"exact": "spiffe://cluster.local/ns/default/sa/bookinfo-ratings"}}}]}}]}}]
              }}}
            }
            """.Replace("LISTEN_PORT", TestNodes.SidecarListenPort(3306).ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)), NetworkRbacOf(chain.Filters[0]));
    }

    [Fact]
    public void Translate_AllowRuleWithHttpFields_AdmitsNoTcpConnection_AndSaysSo()
    {
        var node = ProxyNode.From(TestNodes.Sidecar("mysqldb", "v1", 3306));
        var snapshot = MeshTranslator.Translate(Index(Policy("ALLOW", "[{to: [{operation: {methods: [GET]}}]}]")), node);

        var rbac = NetworkRbacOf(Assert.Single(InboundChains(snapshot)).Filters[0]);
        Assert.Equal(Envoy.Config.Rbac.V3.RBAC.Types.Action.Allow, rbac.Rules.Action);
        Assert.Empty(rbac.Rules.Policies);
        Assert.Contains(snapshot.Warnings, w => w.Contains("ns[default]-policy[mysql-allow]-rule[0]", StringComparison.Ordinal) && w.Contains("TCP port 3306", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_DenyRuleWithHttpFields_LosesOnlyThoseConditionsForTcp()
    {
        var node = ProxyNode.From(TestNodes.Sidecar("mysqldb", "v1", 3306));
        var snapshot = MeshTranslator.Translate(Index(Policy("DENY", "[{from: [{source: {namespaces: [other]}}], to: [{operation: {paths: [/admin]}}]}]")), node);

        var policy = NetworkRbacOf(Assert.Single(InboundChains(snapshot)).Filters[0]).Rules.Policies["ns[default]-policy[mysql-deny]-rule[0]"];
        // The path is gone (the rule covers more); the namespace stays.
        Assert.Equal(Json<Envoy.Config.Rbac.V3.Permission>("""{"andRules": {"rules": [{"any": true}]}}"""), Assert.Single(policy.Permissions));
        Assert.Contains("/ns/other/", Assert.Single(policy.Principals).ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Translate_GatewayTcpChains_CarryTheGatewaysPolicies_ButAutoPassthroughDoesNot()
    {
        var policy = """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: gw, namespace: istio-system}
            spec:
              selector: {matchLabels: {istio: ingressgateway}}
              action: DENY
              rules: [{from: [{source: {ipBlocks: [10.0.0.0/8]}}]}]
            """;
        var servers = """
              - {port: {number: 31400, name: tcp, protocol: TCP}, hosts: ['*']}
              - {port: {number: 15443, name: tls, protocol: TLS}, hosts: ['*.local'], tls: {mode: AUTO_PASSTHROUGH}}
            """;
        var snapshot = MeshTranslator.Translate(Index(policy, GatewayYaml(servers), VirtualService("mysql", "['*']", "  tcp:\n  - route: [{destination: {host: mysqldb}}]")), Gateway);

        Assert.Equal(["envoy.filters.network.rbac", "istio.stats", "envoy.filters.network.tcp_proxy"], Assert.Single(Resource<Listener>(snapshot, TypeUrls.Listener, "0.0.0.0_31400").FilterChains).Filters.Select(f => f.Name));
        Assert.All(Resource<Listener>(snapshot, TypeUrls.Listener, "0.0.0.0_15443").FilterChains, c => Assert.Equal(["istio.stats", "envoy.filters.network.tcp_proxy"], c.Filters.Select(f => f.Name)));
    }

    /// <summary>The ratings-v2 sidecar (outbound port 15001) with explicit-mode outbound TCP ports in its metadata.</summary>
    private static Envoy.Config.Core.V3.Node NodeWithOutboundTcp(params (string Service, string Local)[] ports)
    {
        var node = TestNodes.Sidecar("ratings", "v2");
        var tcp = new Google.Protobuf.WellKnownTypes.Struct();
        foreach (var (service, local) in ports)
        {
            tcp.Fields[service] = Google.Protobuf.WellKnownTypes.Value.ForString(local);
        }
        node.Metadata.Fields["BOWLINE_OUTBOUND_TCP_PORTS"] = Google.Protobuf.WellKnownTypes.Value.ForStruct(tcp);
        return node;
    }

    private static ProxyNode ClientWithOutboundTcp(params (string Service, int Local)[] ports) =>
        ProxyNode.From(NodeWithOutboundTcp([.. ports.Select(p => (p.Service, p.Local.ToString(System.Globalization.CultureInfo.InvariantCulture)))]));

    [Fact]
    public void Translate_ExplicitOutboundTcp_IsAListenerOnTheLocalPortToTheServiceCluster()
    {
        var snapshot = MeshTranslator.Translate(Index(), ClientWithOutboundTcp(("mysqldb.default.svc.cluster.local:3306", 41000)));

        var listener = Resource<Listener>(snapshot, TypeUrls.Listener, "127.0.0.1_41000");
        Assert.Equal(41000u, listener.Address.SocketAddress.PortValue);
        var chain = Assert.Single(listener.FilterChains);
        Assert.Equal("outbound|3306||mysqldb.default.svc.cluster.local", TcpProxyOf(chain).Cluster);
    }

    [Fact]
    public void Translate_ExplicitOutboundTcp_FollowsTheMeshTcpRouteThatMatchesTheClient()
    {
        var vs = """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: mysqldb, namespace: default}
            spec:
              hosts: [mysqldb]
              tcp:
              - match: [{sourceLabels: {app: reviews}}]
                route: [{destination: {host: mysqldb, subset: v2}}]
              - match: [{port: 3306, sourceLabels: {app: ratings}}]
                route: [{destination: {host: mysqldb, subset: v1}}]
            """;
        var snapshot = MeshTranslator.Translate(Index(vs), ClientWithOutboundTcp(("mysqldb.default.svc.cluster.local:3306", 41000)));

        Assert.Equal("outbound|3306|v1|mysqldb.default.svc.cluster.local", TcpProxyOf(Assert.Single(Resource<Listener>(snapshot, TypeUrls.Listener, "127.0.0.1_41000").FilterChains)).Cluster);
    }

    [Fact]
    public void Translate_ExplicitOutboundTcpToAnUnknownService_IsClosedWithAWarning()
    {
        var snapshot = MeshTranslator.Translate(Index(), ClientWithOutboundTcp(("nope.default.svc.cluster.local:3306", 41000)));

        Assert.Equal(IstioNames.BlackHoleCluster, TcpProxyOf(Assert.Single(Resource<Listener>(snapshot, TypeUrls.Listener, "127.0.0.1_41000").FilterChains)).Cluster);
        Assert.Contains(snapshot.Warnings, w => w.Contains("nope.default.svc.cluster.local:3306", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("mysqldb", "41000", "BOWLINE_OUTBOUND_TCP_PORTS.mysqldb")]
    [InlineData("mysqldb.default.svc.cluster.local:3306", "15001", "local port 15001")]
    public void ProxyNode_BadOutboundTcpMetadata_IsRefusedNamingTheProblem(string service, string local, string expected) =>
        Assert.Contains(expected, Assert.Throws<FormatException>(() => ProxyNode.From(NodeWithOutboundTcp((service, local)))).Message, StringComparison.Ordinal);

    [Fact]
    public void Translate_MeshAccessLog_ReachesEveryTcpProxy()
    {
        var index = new ServiceIndex(Index(GatewayYaml("  - {port: {number: 31400, name: tcp, protocol: TCP}, hosts: ['*']}"),
            VirtualService("mysql", "['*']", "  tcp:\n  - route: [{destination: {host: mysqldb}}]")).Config.WithTelemetry(new MeshTelemetry("/dev/stdout")));

        var gateway = TcpProxyOf(Assert.Single(Resource<Listener>(MeshTranslator.Translate(index, Gateway), TypeUrls.Listener, "0.0.0.0_31400").FilterChains));
        var inbound = TcpProxyOf(Assert.Single(InboundChains(MeshTranslator.Translate(index, ProxyNode.From(TestNodes.Sidecar("mysqldb", "v1", 3306))))));

        Assert.Equal("/dev/stdout", Assert.Single(gateway.AccessLog).TypedConfig.Unpack<Envoy.Extensions.AccessLoggers.File.V3.FileAccessLog>().Path);
        Assert.Single(inbound.AccessLog);
    }

    [Fact]
    public void Translate_UdpServicePort_IsNotProxiedAndSaysSo()
    {
        var dns = """
            apiVersion: v1
            kind: Service
            metadata: {name: dns, namespace: default}
            spec:
              selector: {app: dns}
              ports: [{name: dns, port: 53, protocol: UDP}]
            """;
        var snapshot = MeshTranslator.Translate(Index(dns), Gateway);

        Assert.DoesNotContain(snapshot.Get(TypeUrls.Cluster)!.Resources.Keys, k => k.EndsWith("dns.default.svc.cluster.local", StringComparison.Ordinal));
        Assert.Contains(snapshot.Warnings, w => w.Contains("dns.default.svc.cluster.local port 53 (UDP) is not proxied", StringComparison.Ordinal));
    }
}
