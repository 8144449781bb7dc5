using Bowline.ControlPlane.Snapshots;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using CorsV3 = Envoy.Extensions.Filters.Http.Cors.V3;
using FaultV3 = Envoy.Extensions.Filters.Http.Fault.V3;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>The Envoy fields each Istio traffic-management feature becomes, checked against Istio's own translation.</summary>
public sealed class TrafficManagementTranslationTests
{
    private static readonly ProxyNode Sidecar = ProxyNode.From(TestNodes.ProductpageSidecar());
    private static readonly ProxyNode Proxyless = ProxyNode.From(TestNodes.ProxylessGrpc());

    private const string ReviewsHost = "reviews.default.svc.cluster.local:9080";

    /// <summary>A VirtualService for reviews with one HTTP route (YAML under <c>- </c>).</summary>
    private static string Reviews(string route) => VirtualServiceYamlFor("reviews", route);

    private static string VirtualServiceYamlFor(string host, string route) =>
        $"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: {host}\nspec:\n  hosts: [{host}]\n  http:\n  - "
        + Bowline.ControlPlane.Tests.Config.ValidationRows.Indent(route, "    ").TrimStart();

    /// <summary>A DestinationRule for reviews that replaces the sample's (it sorts first), keeping its subsets.</summary>
    private static string ReviewsRule(string trafficPolicy, string subsetV1Policy = "") => $$"""
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: a-reviews}
        spec:
          host: reviews
          trafficPolicy: {{trafficPolicy}}
          subsets:
          - name: v1
            labels: {version: v1}
            {{(subsetV1Policy.Length > 0 ? "trafficPolicy: " + subsetV1Policy : "")}}
          - name: v2
            labels: {version: v2}
          - name: v3
            labels: {version: v3}
        """;

    private static List<Route> ReviewsRoutes(XdsSnapshot snapshot) =>
        Resource<RouteConfiguration>(snapshot, TypeUrls.RouteConfiguration, IstioNames.HttpProxyRoute).VirtualHosts.Single(h => h.Name == ReviewsHost).Routes.ToList();

    [Fact]
    public void Translate_Retries_BecomeEnvoysRetryPolicyWithStatusCodesSplitOut()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(Reviews("retries: {attempts: 3, perTryTimeout: 2s, retryOn: 'gateway-error,503,reset', backoff: 50ms}\nroute: [{destination: {host: reviews}}]")), Sidecar);

        var retry = ReviewsRoutes(snapshot).Single().Route_.RetryPolicy;
        Assert.Equal(3u, retry.NumRetries);
        Assert.Equal("gateway-error,reset,retriable-status-codes", retry.RetryOn);
        Assert.Equal([503u], retry.RetriableStatusCodes);
        Assert.Equal(TimeSpan.FromSeconds(2), retry.PerTryTimeout.ToTimeSpan());
        Assert.Equal(TimeSpan.FromMilliseconds(50), retry.RetryBackOff.BaseInterval.ToTimeSpan());
        Assert.Equal(5, retry.HostSelectionRetryMaxAttempts);
        Assert.Equal("envoy.retry_host_predicates.previous_hosts", retry.RetryHostPredicate.Single().Name);
    }

    [Fact]
    public void Translate_NoRetries_IstiosDefaultPolicy()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(Reviews("route: [{destination: {host: reviews}}]")), Sidecar);

        foreach (var retry in new[] { ReviewsRoutes(snapshot).Single().Route_.RetryPolicy, DetailsRoute(snapshot).Route_.RetryPolicy })
        {
            Assert.Equal(2u, retry.NumRetries);
            Assert.Equal("connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes", retry.RetryOn);
            Assert.Equal("envoy.retry_host_predicates.previous_hosts", retry.RetryHostPredicate.Single().Name);
            Assert.Equal(5, retry.HostSelectionRetryMaxAttempts);
        }
    }

    [Fact]
    public void Translate_ZeroAttempts_NoRetryPolicyAtAll()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(Reviews("retries: {attempts: 0}\nroute: [{destination: {host: reviews}}]")), Sidecar);

        Assert.Null(ReviewsRoutes(snapshot).Single().Route_.RetryPolicy);
    }

    [Fact]
    public void Translate_Fault_IsTheFaultFiltersPerRouteConfigInMillionths()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(Reviews("fault: {delay: {fixedDelay: 7s, percentage: {value: 12.5}}, abort: {httpStatus: 503, percentage: {value: 50}}}\nroute: [{destination: {host: reviews}}]")), Sidecar);

        var fault = ReviewsRoutes(snapshot).Single().TypedPerFilterConfig[EnvoyBuilders.FaultFilter].Unpack<FaultV3.HTTPFault>();
        Assert.Equal(TimeSpan.FromSeconds(7), fault.Delay.FixedDelay.ToTimeSpan());
        Assert.Equal((125_000u, Envoy.Type.V3.FractionalPercent.Types.DenominatorType.Million), (fault.Delay.Percentage.Numerator, fault.Delay.Percentage.Denominator));
        Assert.Equal(503u, fault.Abort.HttpStatus);
        Assert.Equal(500_000u, fault.Abort.Percentage.Numerator);
    }

    [Fact]
    public void Translate_GrpcAbort_CarriesTheStatusNumber()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(Reviews("fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}\nroute: [{destination: {host: reviews}}]")), Sidecar);

        Assert.Equal(14u, ReviewsRoutes(snapshot).Single().TypedPerFilterConfig[EnvoyBuilders.FaultFilter].Unpack<FaultV3.HTTPFault>().Abort.GrpcStatus);
    }

    [Fact]
    public void Translate_HttpConnectionManagers_HaveFaultCorsLocalRateLimitRouterInIstiosOrder()
    {
        var sidecar = MeshTranslator.Translate(Bookinfo.Index(), Sidecar);
        var gateway = MeshTranslator.Translate(Bookinfo.Index(), ProxyNode.From(TestNodes.IngressGateway()));
        var proxyless = MeshTranslator.Translate(Bookinfo.Index(), Proxyless);

        foreach (var listener in sidecar.Get(TypeUrls.Listener)!.Resources.Values.Concat(gateway.Get(TypeUrls.Listener)!.Resources.Values).Select(r => (Listener)r.Message))
        {
            foreach (var chain in listener.FilterChains)
            {
                var hcm = chain.Filters.Single().TypedConfig.Unpack<HttpConnectionManager>();
                Assert.Equal([IstioTelemetryBuilder.MetadataExchangeFilter, EnvoyBuilders.FaultFilter, EnvoyBuilders.CorsFilter, EnvoyBuilders.LocalRateLimitFilter, IstioTelemetryBuilder.StatsFilter, EnvoyBuilders.RouterFilter], hcm.HttpFilters.Select(f => f.Name));
            }
        }
        foreach (var listener in proxyless.Get(TypeUrls.Listener)!.Resources.Values.Select(r => (Listener)r.Message))
        {
            var hcm = listener.ApiListener.ApiListener_.Unpack<HttpConnectionManager>();
            Assert.Equal([EnvoyBuilders.FaultFilter, EnvoyBuilders.RouterFilter], hcm.HttpFilters.Select(f => f.Name));
        }
    }

    [Fact]
    public void Translate_Matches_FollowIstiosHeaderQueryAndCaseRules()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(Reviews("""
            match:
            - uri: {prefix: /API}
              ignoreUriCase: true
              scheme: {exact: http}
              authority: {prefix: reviews}
              method: {exact: GET}
              headers: {x-present: {}, end-user: {exact: jason}}
              withoutHeaders: {x-debug: {exact: '1'}, x-absent: {}}
              queryParams: {v: {regex: '[0-9]+'}, flag: {}}
            route: [{destination: {host: reviews}}]
            """)), Sidecar);

        var match = ReviewsRoutes(snapshot).Single().Match;
        Assert.Equal("/API", match.Prefix);
        Assert.False(match.CaseSensitive);
        Assert.Equal(["end-user", "x-absent", "x-debug", "x-present", ":method", ":authority", ":scheme"], match.Headers.Select(h => h.Name));
        var absent = match.Headers.Single(h => h.Name == "x-absent");
        Assert.True(absent.PresentMatch && absent.InvertMatch && !absent.TreatMissingHeaderAsEmpty);
        var debug = match.Headers.Single(h => h.Name == "x-debug");
        Assert.True(debug.InvertMatch && debug.TreatMissingHeaderAsEmpty);
        Assert.Equal("1", debug.StringMatch.Exact);
        Assert.True(match.Headers.Single(h => h.Name == "x-present").PresentMatch);
        Assert.Equal("reviews", match.Headers.Single(h => h.Name == ":authority").StringMatch.Prefix);
        Assert.Equal(["flag", "v"], match.QueryParameters.Select(q => q.Name));
        Assert.True(match.QueryParameters[0].PresentMatch);
        Assert.Equal("[0-9]+", match.QueryParameters[1].StringMatch.SafeRegex.Regex);
    }

    [Fact]
    public void Translate_SourceLabelsAndNamespace_KeepRoutesOnlyForMatchingProxies()
    {
        var index = Bookinfo.Index(VirtualServiceYamlFor("reviews", """
            match: [{sourceLabels: {app: productpage}, sourceNamespace: default}]
            route: [{destination: {host: reviews, subset: v2}}]
            """).TrimEnd() + "\n  - match: [{sourceLabels: {app: other}}]\n    route: [{destination: {host: reviews, subset: v3}}]\n  - route: [{destination: {host: reviews, subset: v1}}]\n");

        // A match on sources alone matches every request of a proxy it selects, so (as in Istio) nothing after it is sent to that proxy.
        Assert.Equal(["outbound|9080|v2|reviews.default.svc.cluster.local"], ClustersFor(index, "productpage"));
        Assert.Equal(["outbound|9080|v3|reviews.default.svc.cluster.local"], ClustersFor(index, "other"));
        Assert.Equal(["outbound|9080|v1|reviews.default.svc.cluster.local"], ClustersFor(index, "details"));
    }

    private static List<string> ClustersFor(Bowline.ControlPlane.Registry.ServiceIndex index, string app)
    {
        var node = TestNodes.ProductpageSidecar();
        node.Metadata.Fields["LABELS"].StructValue.Fields["app"] = Google.Protobuf.WellKnownTypes.Value.ForString(app);
        return ReviewsRoutes(MeshTranslator.Translate(index, ProxyNode.From(node))).Select(r => r.Route_.Cluster).ToList();
    }

    [Fact]
    public void Translate_HeadersRewriteAndWeightedDestinations_AsIstioPlacesThem()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(Reviews("""
            headers:
              request: {set: {x-set: a}, add: {x-add: b}, remove: [x-remove]}
              response: {set: {x-resp: c}, remove: [server]}
            rewrite: {uri: /v2, authority: reviews.internal}
            route:
            - destination: {host: reviews, subset: v1}
              weight: 1000
            - destination: {host: reviews, subset: v2}
              weight: 1
              headers: {request: {set: {x-canary: 'true'}}, response: {add: {x-version: v2}}}
            - destination: {host: reviews, subset: v3}
              weight: 0
            """)), Sidecar);

        var route = ReviewsRoutes(snapshot).Single();
        Assert.Equal([("x-set", HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd), ("x-add", HeaderValueOption.Types.HeaderAppendAction.AppendIfExistsOrAdd)],
            route.RequestHeadersToAdd.Select(h => (h.Header.Key, h.AppendAction)));
        Assert.Equal(["x-remove"], route.RequestHeadersToRemove);
        Assert.Equal("x-resp", route.ResponseHeadersToAdd.Single().Header.Key);
        Assert.Equal(["server"], route.ResponseHeadersToRemove);
        Assert.Equal("/v2", route.Route_.PrefixRewrite);
        Assert.Equal("reviews.internal", route.Route_.HostRewriteLiteral);
        // Weights are proportions; a 0-weight destination is left out, as Istio does.
        var clusters = route.Route_.WeightedClusters.Clusters;
        Assert.Equal([(1000u, "outbound|9080|v1|reviews.default.svc.cluster.local"), (1u, "outbound|9080|v2|reviews.default.svc.cluster.local")], clusters.Select(c => (c.Weight ?? 0, c.Name)));
        Assert.Equal("x-canary", clusters[1].RequestHeadersToAdd.Single().Header.Key);
        Assert.Equal(HeaderValueOption.Types.HeaderAppendAction.AppendIfExistsOrAdd, clusters[1].ResponseHeadersToAdd.Single().AppendAction);
    }

    [Fact]
    public void Translate_SingleDestinationHeaders_GoOnTheRoute()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(Reviews("route: [{destination: {host: reviews}, headers: {request: {set: {':authority': reviews.example, x-a: '1'}}}}]")), Sidecar);

        var route = ReviewsRoutes(snapshot).Single();
        Assert.Equal("outbound|9080||reviews.default.svc.cluster.local", route.Route_.Cluster);
        Assert.Equal("x-a", route.RequestHeadersToAdd.Single().Header.Key);
        Assert.Equal("reviews.example", route.Route_.HostRewriteLiteral);
    }

    [Fact]
    public void Translate_RegexRewrite_BecomesRegexMatchAndSubstitute()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(Reviews("rewrite: {uriRegexRewrite: {match: '^/service/([^/]+)(/.*)$', rewrite: '\\2/instance/\\1'}}\nroute: [{destination: {host: reviews}}]")), Sidecar);

        var rewrite = ReviewsRoutes(snapshot).Single().Route_.RegexRewrite;
        Assert.Equal("^/service/([^/]+)(/.*)$", rewrite.Pattern.Regex);
        Assert.Equal("\\2/instance/\\1", rewrite.Substitution);
    }

    [Theory]
    [InlineData("{uri: /new, authority: new.example, redirectCode: 302}", "/new", "new.example", 0u, RedirectAction.Types.RedirectResponseCode.Found)]
    [InlineData("{scheme: https, port: 443}", null, "", 0u, RedirectAction.Types.RedirectResponseCode.MovedPermanently)]
    [InlineData("{derivePort: FROM_REQUEST_PORT}", null, "", 9080u, RedirectAction.Types.RedirectResponseCode.MovedPermanently)]
    [InlineData("{port: 8443, redirectCode: 307}", null, "", 8443u, RedirectAction.Types.RedirectResponseCode.TemporaryRedirect)]
    public void Translate_Redirect_BecomesEnvoysRedirectAction(string redirect, string? path, string host, uint port, RedirectAction.Types.RedirectResponseCode code)
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(Reviews($"redirect: {redirect}")), Sidecar);

        var action = ReviewsRoutes(snapshot).Single().Redirect;
        Assert.Equal(path ?? "", action.PathRedirect);
        Assert.Equal(host, action.HostRedirect);
        Assert.Equal(port, action.PortRedirect);
        Assert.Equal(code, action.ResponseCode);
    }

    [Fact]
    public void Translate_DirectResponse_BecomesEnvoysDirectResponse()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(Reviews("directResponse: {status: 418, body: {string: teapot}}")), Sidecar);

        var direct = ReviewsRoutes(snapshot).Single().DirectResponse;
        Assert.Equal((418u, "teapot"), (direct.Status, direct.Body.InlineString));
    }

    [Fact]
    public void Translate_Mirrors_BecomeRequestMirrorPolicies()
    {
        var index = Bookinfo.Index(Reviews("mirror: {host: reviews, subset: v2}\nmirrorPercentage: {value: 25}\nroute: [{destination: {host: reviews, subset: v1}}]"));
        var legacy = Bookinfo.Index(Reviews("mirror: {host: reviews, subset: v3}\nroute: [{destination: {host: reviews, subset: v1}}]"));

        var mirror = ReviewsRoutes(MeshTranslator.Translate(index, Sidecar)).Single().Route_.RequestMirrorPolicies.Single();
        var all = ReviewsRoutes(MeshTranslator.Translate(legacy, Sidecar)).Single().Route_.RequestMirrorPolicies.Single();

        Assert.Equal("outbound|9080|v2|reviews.default.svc.cluster.local", mirror.Cluster);
        Assert.Equal((250_000u, Envoy.Type.V3.FractionalPercent.Types.DenominatorType.Million), (mirror.RuntimeFraction.DefaultValue.Numerator, mirror.RuntimeFraction.DefaultValue.Denominator));
        Assert.Equal((100u, Envoy.Type.V3.FractionalPercent.Types.DenominatorType.Hundred), (all.RuntimeFraction.DefaultValue.Numerator, all.RuntimeFraction.DefaultValue.Denominator));
    }

    [Fact]
    public void Translate_CorsPolicy_IsTheCorsFiltersPerRouteConfig()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(Reviews("corsPolicy: {allowOrigins: [{exact: 'https://a.example'}, {regex: 'https://.*\\.b\\.example'}], allowMethods: [GET, POST], allowHeaders: [x-a, x-b], exposeHeaders: [x-id], maxAge: 24h, allowCredentials: true, unmatchedPreflights: IGNORE}\nroute: [{destination: {host: reviews}}]")), Sidecar);

        var cors = ReviewsRoutes(snapshot).Single().TypedPerFilterConfig[EnvoyBuilders.CorsFilter].Unpack<CorsV3.CorsPolicy>();
        Assert.Equal("https://a.example", cors.AllowOriginStringMatch[0].Exact);
        Assert.Equal("https://.*\\.b\\.example", cors.AllowOriginStringMatch[1].SafeRegex.Regex);
        Assert.Equal(("GET,POST", "x-a,x-b", "x-id", "86400"), (cors.AllowMethods, cors.AllowHeaders, cors.ExposeHeaders, cors.MaxAge));
        Assert.True(cors.AllowCredentials);
        Assert.False(cors.ForwardNotMatchingPreflights);
        Assert.Equal(100u, cors.FilterEnabled.DefaultValue.Numerator);
    }

    [Fact]
    public void Translate_ConnectionPool_SetsCircuitBreakersTimeoutsAndProtocolOptions()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(ReviewsRule("""
            {connectionPool: {tcp: {maxConnections: 100, connectTimeout: 250ms, tcpKeepalive: {time: 600s, interval: 30s, probes: 4}, maxConnectionDuration: 1h}, http: {http1MaxPendingRequests: 7, http2MaxRequests: 50, maxRequestsPerConnection: 20, maxRetries: 4, idleTimeout: 90s, h2UpgradePolicy: UPGRADE, maxConcurrentStreams: 16}}, retryBudget: {percent: 25, minRetryConcurrency: 5}}
            """)), Sidecar);

        var cluster = Resource<Cluster>(snapshot, TypeUrls.Cluster, "outbound|9080||reviews.default.svc.cluster.local");
        var thresholds = cluster.CircuitBreakers.Thresholds.Single();
        Assert.Equal((100u, 7u, 50u, 4u), (thresholds.MaxConnections ?? 0, thresholds.MaxPendingRequests ?? 0, thresholds.MaxRequests ?? 0, thresholds.MaxRetries ?? 0));
        Assert.Equal((25.0, 5u), (thresholds.RetryBudget.BudgetPercent.Value, thresholds.RetryBudget.MinRetryConcurrency ?? 0));
        Assert.Equal(TimeSpan.FromMilliseconds(250), cluster.ConnectTimeout.ToTimeSpan());
        Assert.Equal((4u, 600u, 30u), (cluster.UpstreamConnectionOptions.TcpKeepalive.KeepaliveProbes ?? 0, cluster.UpstreamConnectionOptions.TcpKeepalive.KeepaliveTime ?? 0, cluster.UpstreamConnectionOptions.TcpKeepalive.KeepaliveInterval ?? 0));
        var options = cluster.TypedExtensionProtocolOptions[EnvoyBuilders.HttpProtocolOptionsKey].Unpack<Envoy.Extensions.Upstreams.Http.V3.HttpProtocolOptions>();
        Assert.Equal(TimeSpan.FromSeconds(90), options.CommonHttpProtocolOptions.IdleTimeout.ToTimeSpan());
        Assert.Equal(20u, options.CommonHttpProtocolOptions.MaxRequestsPerConnection);
        Assert.Equal(TimeSpan.FromHours(1), options.CommonHttpProtocolOptions.MaxConnectionDuration.ToTimeSpan());
        // UPGRADE turns this HTTP/1.1 port's upstream into HTTP/2, where maxConcurrentStreams applies.
        Assert.Equal(16u, options.ExplicitHttpConfig.Http2ProtocolOptions.MaxConcurrentStreams);
    }

    [Fact]
    public void Translate_NoConnectionPool_UnlimitedThresholdsAsIstioSets()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(), Sidecar);

        var thresholds = Resource<Cluster>(snapshot, TypeUrls.Cluster, "outbound|9080||reviews.default.svc.cluster.local").CircuitBreakers.Thresholds.Single();
        Assert.Equal(uint.MaxValue, thresholds.MaxConnections);
        Assert.Equal(uint.MaxValue, thresholds.MaxPendingRequests);
        Assert.Equal(uint.MaxValue, thresholds.MaxRequests);
        Assert.Equal(uint.MaxValue, thresholds.MaxRetries);
        Assert.True(thresholds.TrackRemaining);
        Assert.Null(thresholds.RetryBudget);
    }

    [Fact]
    public void Translate_OutlierDetection_EnforcesOnlyWhatIstioEnforces()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(ReviewsRule("{outlierDetection: {consecutive5xxErrors: 5, consecutiveGatewayErrors: 0, consecutiveLocalOriginFailures: 3, splitExternalLocalOriginErrors: true, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 40, minHealthPercent: 25}}")), Sidecar);

        var cluster = Resource<Cluster>(snapshot, TypeUrls.Cluster, "outbound|9080|v2|reviews.default.svc.cluster.local");
        var outlier = cluster.OutlierDetection;
        Assert.Equal((5u, 100u), (outlier.Consecutive5Xx ?? 0, outlier.EnforcingConsecutive5Xx ?? 0));
        Assert.Equal((0u, 0u), (outlier.ConsecutiveGatewayFailure ?? 99, outlier.EnforcingConsecutiveGatewayFailure ?? 99));
        Assert.Equal((3u, 100u), (outlier.ConsecutiveLocalOriginFailure ?? 0, outlier.EnforcingConsecutiveLocalOriginFailure ?? 0));
        Assert.True(outlier.SplitExternalLocalOriginErrors);
        Assert.Equal((0u, 0u), (outlier.EnforcingSuccessRate ?? 99, outlier.EnforcingLocalOriginSuccessRate ?? 99));
        Assert.Equal((TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(30), 40u), (outlier.Interval.ToTimeSpan(), outlier.BaseEjectionTime.ToTimeSpan(), outlier.MaxEjectionPercent ?? 0));
        Assert.Equal(25, cluster.CommonLbConfig.HealthyPanicThreshold.Value);
    }

    [Fact]
    public void Translate_ConsistentHash_RingHashClusterAndHashPolicyOnEveryRouteToIt()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(ReviewsRule("{loadBalancer: {consistentHash: {httpCookie: {name: user, path: /, ttl: 60s}, ringHash: {minimumRingSize: 4096}}}}")), Sidecar);

        var cluster = Resource<Cluster>(snapshot, TypeUrls.Cluster, "outbound|9080||reviews.default.svc.cluster.local");
        Assert.Equal(Cluster.Types.LbPolicy.RingHash, cluster.LbPolicy);
        Assert.Equal(4096ul, cluster.RingHashLbConfig.MinimumRingSize);
        var route = ReviewsRoutes(snapshot).Single();
        var cookie = route.Route_.HashPolicy.Single().Cookie;
        Assert.Equal(("user", "/", TimeSpan.FromSeconds(60)), (cookie.Name, cookie.Path, cookie.Ttl.ToTimeSpan()));
        // Istio's default route always avoids previous hosts.
        Assert.Single(route.Route_.RetryPolicy.RetryHostPredicate);
    }

    [Fact]
    public void Translate_ConsistentHashBehindAVirtualService_RetriesStayOnTheHashedHost()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(ReviewsRule("{loadBalancer: {simple: ROUND_ROBIN}}", "{loadBalancer: {consistentHash: {httpHeaderName: x-user, maglev: {tableSize: 65537}}}}"), Reviews("route: [{destination: {host: reviews, subset: v1}}]")), Sidecar);

        var v1 = Resource<Cluster>(snapshot, TypeUrls.Cluster, "outbound|9080|v1|reviews.default.svc.cluster.local");
        Assert.Equal((Cluster.Types.LbPolicy.Maglev, 65537ul), (v1.LbPolicy, v1.MaglevLbConfig.TableSize ?? 0));
        Assert.Equal(Cluster.Types.LbPolicy.RoundRobin, Resource<Cluster>(snapshot, TypeUrls.Cluster, "outbound|9080|v2|reviews.default.svc.cluster.local").LbPolicy);
        var route = ReviewsRoutes(snapshot).Single();
        Assert.Equal("x-user", route.Route_.HashPolicy.Single().Header.HeaderName);
        Assert.Empty(route.Route_.RetryPolicy.RetryHostPredicate);
    }

    [Fact]
    public void Translate_PortLevelSettings_ReplaceTheDestinationPolicyForThatPort()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(ReviewsRule("{loadBalancer: {simple: RANDOM}, outlierDetection: {consecutive5xxErrors: 3}, portLevelSettings: [{port: {number: 9080}, connectionPool: {http: {http2MaxRequests: 10}}}]}")), Sidecar);

        var cluster = Resource<Cluster>(snapshot, TypeUrls.Cluster, "outbound|9080||reviews.default.svc.cluster.local");
        // Port-level settings do not inherit: RANDOM and the outlier detection are gone for port 9080.
        Assert.Equal(Cluster.Types.LbPolicy.LeastRequest, cluster.LbPolicy);
        Assert.Null(cluster.OutlierDetection);
        Assert.Equal(10u, cluster.CircuitBreakers.Thresholds.Single().MaxRequests);
    }

    [Fact]
    public void Translate_SubsetPolicy_OverridesOnlyTheFieldsItSets()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(ReviewsRule("{loadBalancer: {simple: RANDOM}, outlierDetection: {consecutive5xxErrors: 3}}", "{loadBalancer: {simple: ROUND_ROBIN}}")), Sidecar);

        var v1 = Resource<Cluster>(snapshot, TypeUrls.Cluster, "outbound|9080|v1|reviews.default.svc.cluster.local");
        var v2 = Resource<Cluster>(snapshot, TypeUrls.Cluster, "outbound|9080|v2|reviews.default.svc.cluster.local");
        Assert.Equal(Cluster.Types.LbPolicy.RoundRobin, v1.LbPolicy);
        Assert.Equal(3u, v1.OutlierDetection.Consecutive5Xx);
        Assert.Equal(Cluster.Types.LbPolicy.Random, v2.LbPolicy);
    }

    [Fact]
    public void Translate_ProxylessClient_GetsRingHashAndMaxRequestsOnly()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(ReviewsRule("{loadBalancer: {consistentHash: {httpHeaderName: x-user}}, connectionPool: {http: {http2MaxRequests: 10, maxRetries: 2}}, outlierDetection: {consecutive5xxErrors: 1}}")), Proxyless);

        var cluster = Resource<Cluster>(snapshot, TypeUrls.Cluster, "outbound|9080||reviews.default.svc.cluster.local");
        Assert.Equal(Cluster.Types.LbPolicy.RingHash, cluster.LbPolicy);
        var thresholds = cluster.CircuitBreakers.Thresholds.Single();
        Assert.Equal(10u, thresholds.MaxRequests);
        Assert.Null(thresholds.MaxRetries);
        Assert.Null(cluster.OutlierDetection);
        Assert.Contains(snapshot.Warnings, w => w.Contains("gRFC A50", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_Delegate_PullsTheDelegatesRoutesWithMergedMatches()
    {
        var root = Reviews("match: [{uri: {prefix: /api}}]\ntimeout: 3s\ndelegate: {name: reviews-api}").TrimEnd() + "\n  - route: [{destination: {host: reviews, subset: v1}}]\n";
        const string Delegate = """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews-api}
            spec:
              http:
              - match: [{uri: {prefix: /api/v2}, headers: {end-user: {exact: jason}}}]
                route: [{destination: {host: reviews, subset: v2}}]
              - match: [{uri: {prefix: /other}}]
                route: [{destination: {host: reviews, subset: v3}}]
              - route: [{destination: {host: reviews, subset: v3}}]
            """;

        var snapshot = MeshTranslator.Translate(Bookinfo.Index(root, Delegate), Sidecar);

        var routes = ReviewsRoutes(snapshot);
        Assert.Equal([("/api/v2", "outbound|9080|v2|reviews.default.svc.cluster.local"), ("/api", "outbound|9080|v3|reviews.default.svc.cluster.local"), ("/", "outbound|9080|v1|reviews.default.svc.cluster.local")],
            routes.Select(r => (r.Match.Prefix, r.Route_.Cluster)));
        Assert.Equal("end-user", routes[0].Match.Headers.Single().Name);
        Assert.Equal(TimeSpan.FromSeconds(3), routes[0].Route_.Timeout.ToTimeSpan());
        Assert.Contains(snapshot.Warnings, w => w.Contains("reviews-api", StringComparison.Ordinal) && w.Contains("ignored", StringComparison.Ordinal));
    }

    private static Route DetailsRoute(XdsSnapshot snapshot) =>
        Resource<RouteConfiguration>(snapshot, TypeUrls.RouteConfiguration, IstioNames.HttpProxyRoute).VirtualHosts.Single(h => h.Name == "details.default.svc.cluster.local:9080").Routes.Single();

    private static T Resource<T>(XdsSnapshot snapshot, string typeUrl, string name)
    {
        var resources = snapshot.Get(typeUrl)!.Resources;
        Assert.True(resources.TryGetValue(name, out var resource), $"no {TypeUrls.ShortName(typeUrl)} resource {name}; have {string.Join(", ", resources.Keys)}");
        return Assert.IsType<T>(resource.Message);
    }
}
