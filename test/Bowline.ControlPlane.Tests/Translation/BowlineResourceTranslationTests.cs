using Bowline.ControlPlane.Snapshots;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using LocalRateLimitV3 = Envoy.Extensions.Filters.Http.LocalRatelimit.V3;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>HealthCheck and RateLimit (bowline.dev/v1alpha1) become the Envoy fields that do the job: Cluster.health_checks and the local rate limit filter.</summary>
public sealed class BowlineResourceTranslationTests
{
    private const string ReviewsHost = $"{Bookinfo.Reviews}:9080";
    private static readonly ProxyNode Sidecar = ProxyNode.From(TestNodes.ProductpageSidecar());
    private static readonly ProxyNode Proxyless = ProxyNode.From(TestNodes.ProxylessGrpc());

    private static string HealthCheck(string name, string spec) =>
        $"apiVersion: bowline.dev/v1alpha1\nkind: HealthCheck\nmetadata:\n  name: {name}\nspec:\n" + Bowline.ControlPlane.Tests.Config.ValidationRows.Indent(spec, "  ");

    private static string RateLimit(string name, string spec) =>
        $"apiVersion: bowline.dev/v1alpha1\nkind: RateLimit\nmetadata:\n  name: {name}\nspec:\n" + Bowline.ControlPlane.Tests.Config.ValidationRows.Indent(spec, "  ");

    private static string ReviewsVirtualService(string http) =>
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec:\n  hosts: [reviews]\n  http:\n" + Bowline.ControlPlane.Tests.Config.ValidationRows.Indent(http, "  ");

    [Fact]
    public void Translate_HttpHealthCheck_IsOnEveryClusterOfTheServiceWithEnvoysFields()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(HealthCheck("reviews", "host: reviews\ninterval: 5s\ntimeout: 250ms\nintervalJitter: 100ms\nhealthyThreshold: 2\nunhealthyThreshold: 4\nhttp: {path: /healthz, host: reviews.internal, expectedStatuses: [{start: 200, end: 204}, {start: 301, end: 302}]}")), Sidecar);

        var reviews = Clusters(snapshot).Where(c => c.Name.EndsWith(Bookinfo.Reviews, StringComparison.Ordinal)).ToList();
        Assert.Equal(4, reviews.Count); // the service and its subsets v1, v2, v3
        foreach (var cluster in reviews)
        {
            var check = Assert.Single(cluster.HealthChecks);
            Assert.Equal(TimeSpan.FromSeconds(5), check.Interval.ToTimeSpan());
            Assert.Equal(TimeSpan.FromMilliseconds(250), check.Timeout.ToTimeSpan());
            Assert.Equal(TimeSpan.FromMilliseconds(100), check.IntervalJitter.ToTimeSpan());
            Assert.Equal(2u, check.HealthyThreshold);
            Assert.Equal(4u, check.UnhealthyThreshold);
            Assert.Equal("/healthz", check.HttpHealthCheck.Path);
            Assert.Equal("reviews.internal", check.HttpHealthCheck.Host);
            // Int64Range ends are exclusive.
            Assert.Equal([(200L, 205L), (301L, 303L)], check.HttpHealthCheck.ExpectedStatuses.Select(r => (r.Start, r.End)));
        }
        Assert.All(Clusters(snapshot).Where(c => !c.Name.EndsWith(Bookinfo.Reviews, StringComparison.Ordinal)), c => Assert.Empty(c.HealthChecks));
    }

    [Fact]
    public void Translate_HealthCheckDefaults_AreExplicitSoEnvoyAgrees()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(HealthCheck("ratings", "host: ratings\nhttp: {path: /}")), Sidecar);

        var check = Assert.Single(Cluster(snapshot, "outbound|9080||ratings.default.svc.cluster.local").HealthChecks);
        Assert.Equal(TimeSpan.FromSeconds(10), check.Interval.ToTimeSpan());
        Assert.Equal(TimeSpan.FromSeconds(1), check.Timeout.ToTimeSpan());
        Assert.Null(check.IntervalJitter);
        Assert.Equal(1u, check.HealthyThreshold);
        Assert.Equal(3u, check.UnhealthyThreshold);
        // Envoy alone would accept only 200.
        Assert.Equal([(200L, 300L)], check.HttpHealthCheck.ExpectedStatuses.Select(r => (r.Start, r.End)));
    }

    [Fact]
    public void Translate_GrpcHealthCheckOfOneSubset_IsOnThatSubsetsClusterOnly()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(HealthCheck("reviews-v2", "host: reviews\nsubset: v2\ngrpc: {serviceName: reviews.v1.Reviews}")), Sidecar);

        Assert.Equal("reviews.v1.Reviews", Assert.Single(Cluster(snapshot, $"outbound|9080|v2|{Bookinfo.Reviews}").HealthChecks).GrpcHealthCheck.ServiceName);
        Assert.Empty(Cluster(snapshot, $"outbound|9080||{Bookinfo.Reviews}").HealthChecks);
        Assert.Empty(Cluster(snapshot, $"outbound|9080|v1|{Bookinfo.Reviews}").HealthChecks);
    }

    [Fact]
    public void Translate_TcpHealthCheck_IsAConnectCheck()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(HealthCheck("details", "host: details.default.svc.cluster.local\nport: 9080\ntcp: {}")), Sidecar);

        var check = Assert.Single(Cluster(snapshot, "outbound|9080||details.default.svc.cluster.local").HealthChecks);
        Assert.Equal(Envoy.Config.Core.V3.HealthCheck.HealthCheckerOneofCase.TcpHealthCheck, check.HealthCheckerCase);
    }

    [Fact]
    public void Translate_HealthCheckProblems_AreWarningsNamingTheResource()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(
            HealthCheck("a", "host: reviews\ntcp: {}"),
            HealthCheck("b", "host: reviews\nport: 9080\nhttp: {path: /}"),
            HealthCheck("c", "host: reviews\nport: 7000\ntcp: {}"),
            HealthCheck("d", "host: nosuch\ntcp: {}"),
            HealthCheck("e", "host: ratings\nsubset: v9\ntcp: {}")), Sidecar);

        // The first in namespace/name order wins where two select one cluster.
        Assert.Equal(Envoy.Config.Core.V3.HealthCheck.HealthCheckerOneofCase.TcpHealthCheck, Assert.Single(Cluster(snapshot, $"outbound|9080||{Bookinfo.Reviews}").HealthChecks).HealthCheckerCase);
        Assert.Contains(snapshot.Warnings, w => w.StartsWith("HealthCheck default/b", StringComparison.Ordinal) && w.Contains("only HealthCheck default/a applies", StringComparison.Ordinal));
        Assert.Contains(snapshot.Warnings, w => w.StartsWith("HealthCheck default/c", StringComparison.Ordinal) && w.Contains("no HTTP port 7000", StringComparison.Ordinal));
        Assert.Contains(snapshot.Warnings, w => w.StartsWith("HealthCheck default/d", StringComparison.Ordinal) && w.Contains("nosuch.default.svc.cluster.local is not a service", StringComparison.Ordinal));
        Assert.Contains(snapshot.Warnings, w => w.StartsWith("HealthCheck default/e", StringComparison.Ordinal) && w.Contains("no subset v9", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_HealthCheckForProxyless_IsNotSentAndSaysSo()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(HealthCheck("reviews", "host: reviews\ntcp: {}")), Proxyless);

        Assert.All(Clusters(snapshot), c => Assert.Empty(c.HealthChecks));
        Assert.Contains(snapshot.Warnings, w => w.Contains("proxyless gRPC clients do not run active health checks", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_RateLimitWithoutMatch_PutsTheBucketOnEveryRouteOfTheHostOnly()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(RateLimit("reviews", "host: reviews\ntokenBucket: {maxTokens: 100, tokensPerFill: 10, fillInterval: 2s}\nstatusCode: 503\nresponseHeaders: {X-Limited-By: bowline}")), Sidecar);

        var route = Assert.Single(Routes(snapshot, ReviewsHost));
        var limit = route.TypedPerFilterConfig[RateLimitBuilder.FilterName].Unpack<LocalRateLimitV3.LocalRateLimit>();
        Assert.Equal("http_local_rate_limiter", limit.StatPrefix);
        Assert.Equal((100u, 10u, TimeSpan.FromSeconds(2)), (limit.TokenBucket.MaxTokens, limit.TokenBucket.TokensPerFill!.Value, limit.TokenBucket.FillInterval.ToTimeSpan()));
        foreach (var fraction in new[] { limit.FilterEnabled, limit.FilterEnforced })
        {
            Assert.Equal((100u, Envoy.Type.V3.FractionalPercent.Types.DenominatorType.Hundred), (fraction.DefaultValue.Numerator, fraction.DefaultValue.Denominator));
        }
        Assert.Equal(Envoy.Type.V3.StatusCode.ServiceUnavailable, limit.Status.Code);
        var header = Assert.Single(limit.ResponseHeadersToAdd).Header;
        Assert.Equal(("x-limited-by", "bowline"), (header.Key, header.Value));
        Assert.Equal(Envoy.Extensions.Common.Ratelimit.V3.XRateLimitHeadersRFCVersion.DraftVersion03, limit.EnableXRatelimitHeaders);
        // Routes of other hosts carry nothing: no limit.
        Assert.All(Routes(snapshot, "ratings.default.svc.cluster.local:9080"), r => Assert.False(r.TypedPerFilterConfig.ContainsKey(RateLimitBuilder.FilterName)));
    }

    [Fact]
    public void Translate_LocalRateLimitFilter_HasNoBucketOfItsOwn()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(RateLimit("reviews", "host: reviews\ntokenBucket: {maxTokens: 1, fillInterval: 1s}")), Sidecar);

        foreach (var listener in snapshot.Get(TypeUrls.Listener)!.Resources.Values.Select(r => (Listener)r.Message))
        {
            var hcm = listener.FilterChains[0].Filters.Single().TypedConfig.Unpack<HttpConnectionManager>();
            var filter = hcm.HttpFilters.Single(f => f.Name == RateLimitBuilder.FilterName).TypedConfig.Unpack<LocalRateLimitV3.LocalRateLimit>();
            Assert.Equal(new LocalRateLimitV3.LocalRateLimit { StatPrefix = "http_local_rate_limiter" }, filter);
        }
    }

    [Fact]
    public void Translate_RateLimitMatch_LimitsRoutesInsideItAndSplitsRoutesThatContainIt()
    {
        var vs = ReviewsVirtualService("""
            - match: [{uri: {prefix: /api/v1}}]
              route: [{destination: {host: reviews, subset: v1}}]
            - match: [{uri: {prefix: /static}}]
              route: [{destination: {host: reviews, subset: v2}}]
            - route: [{destination: {host: reviews, subset: v3}}]
            """);
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(vs, RateLimit("reviews-api", "host: reviews\nmatch: [{uri: {prefix: /api}}]\ntokenBucket: {maxTokens: 5, fillInterval: 1s}")), Sidecar);

        var routes = Routes(snapshot, ReviewsHost);
        Assert.Equal(["/api/v1", "/static", "/api", "/"], routes.Select(r => r.Match.Prefix));
        Assert.Equal([true, false, true, false], routes.Select(r => r.TypedPerFilterConfig.ContainsKey(RateLimitBuilder.FilterName)));
        // The narrowed copy goes where the default route goes.
        Assert.Equal(routes[3].Route_, routes[2].Route_);
    }

    [Fact]
    public void Translate_RateLimitExactAndRegexOnTheDefaultRoute_AddsOneNarrowedRouteEach()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(RateLimit("reviews", "host: reviews\nmatch: [{uri: {exact: /login}}, {uri: {regex: '/v[0-9]+/.*'}}]\ntokenBucket: {maxTokens: 5, fillInterval: 1s}")), Sidecar);

        var routes = Routes(snapshot, ReviewsHost);
        Assert.Equal(3, routes.Count);
        Assert.Equal("/login", routes[0].Match.Path);
        Assert.Equal("/v[0-9]+/.*", routes[1].Match.SafeRegex.Regex);
        Assert.Equal("/", routes[2].Match.Prefix);
        Assert.False(routes[2].TypedPerFilterConfig.ContainsKey(RateLimitBuilder.FilterName));
    }

    [Fact]
    public void Translate_RateLimitRegexAgainstAPrefixRoute_IsAWarningAndNoLimit()
    {
        var vs = ReviewsVirtualService("- match: [{uri: {prefix: /api}}]\n  route: [{destination: {host: reviews}}]");
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(vs, RateLimit("reviews", "host: reviews\nmatch: [{uri: {regex: '/api/.*'}}]\ntokenBucket: {maxTokens: 5, fillInterval: 1s}")), Sidecar);

        Assert.All(Routes(snapshot, ReviewsHost), r => Assert.False(r.TypedPerFilterConfig.ContainsKey(RateLimitBuilder.FilterName)));
        Assert.Contains(snapshot.Warnings, w => w.StartsWith("RateLimit default/reviews", StringComparison.Ordinal) && w.Contains("cannot tell", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_TwoRateLimits_TheFirstWinsWhereTheyOverlap()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(
            RateLimit("a", "host: reviews\nmatch: [{uri: {prefix: /api}}]\ntokenBucket: {maxTokens: 1, fillInterval: 1s}"),
            RateLimit("b", "host: reviews\ntokenBucket: {maxTokens: 50, fillInterval: 1s}")), Sidecar);

        var routes = Routes(snapshot, ReviewsHost);
        Assert.Equal([1u, 50u], routes.Select(r => r.TypedPerFilterConfig[RateLimitBuilder.FilterName].Unpack<LocalRateLimitV3.LocalRateLimit>().TokenBucket.MaxTokens));
    }

    [Fact]
    public void Translate_RateLimitProblemsAndProxyless_AreWarnings()
    {
        var index = Bookinfo.Index(
            RateLimit("a", "host: reviews\nport: 7000\ntokenBucket: {maxTokens: 1, fillInterval: 1s}"),
            RateLimit("b", "host: nosuch\ntokenBucket: {maxTokens: 1, fillInterval: 1s}"),
            RateLimit("c", "host: ratings\ntokenBucket: {maxTokens: 1, fillInterval: 1s}"));
        var sidecar = MeshTranslator.Translate(index, Sidecar);
        var proxyless = MeshTranslator.Translate(index, Proxyless);

        Assert.All(Routes(sidecar, ReviewsHost), r => Assert.False(r.TypedPerFilterConfig.ContainsKey(RateLimitBuilder.FilterName)));
        Assert.Contains(sidecar.Warnings, w => w.StartsWith("RateLimit default/a", StringComparison.Ordinal) && w.Contains("no HTTP port 7000", StringComparison.Ordinal));
        Assert.Contains(sidecar.Warnings, w => w.StartsWith("RateLimit default/b", StringComparison.Ordinal) && w.Contains("not a service", StringComparison.Ordinal));
        Assert.Contains(proxyless.Warnings, w => w.StartsWith("RateLimit default/c", StringComparison.Ordinal) && w.Contains("proxyless gRPC clients", StringComparison.Ordinal));
        Assert.All(proxyless.Get(TypeUrls.RouteConfiguration)!.Resources.Values.SelectMany(r => ((RouteConfiguration)r.Message).VirtualHosts).SelectMany(h => h.Routes),
            r => Assert.False(r.TypedPerFilterConfig.ContainsKey(RateLimitBuilder.FilterName)));
    }

    private static readonly ProxyNode ReviewsV1 = ProxyNode.From(TestNodes.Sidecar("reviews", "v1", 9080));

    private const string PerSource = """
        host: reviews
        match: [{uri: {prefix: /api}}]
        perSource:
          tokenBucket: {maxTokens: 10, tokensPerFill: 10, fillInterval: 1s}
          overrides:
          - principal: cluster.local/ns/default/sa/bookinfo-productpage
            tokenBucket: {maxTokens: 50, fillInterval: 1s}
          - principal: cluster.local/ns/other/sa/batch
            tokenBucket: {maxTokens: 1, fillInterval: 1s}
        """;

    private static List<Route> InboundRoutes(XdsSnapshot snapshot)
    {
        var listener = (Envoy.Config.Listener.V3.Listener)snapshot.Get(TypeUrls.Listener)!.Resources[IstioNames.VirtualInbound].Message;
        var hcm = listener.FilterChains.SelectMany(c => c.Filters).First(f => f.TypedConfig.Is(Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager.Descriptor))
            .TypedConfig.Unpack<Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager>();
        Assert.Contains(hcm.HttpFilters, f => f.Name == RateLimitBuilder.FilterName);
        return [.. hcm.RouteConfig.VirtualHosts.Single().Routes];
    }

    [Fact]
    public void Translate_PerSource_TheServicesOwnSidecarLimitsEachCallingIdentity_NoCallerSidecarDoes()
    {
        var index = Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries, RateLimit("reviews-per-caller", PerSource));
        var server = MeshTranslator.Translate(index, ReviewsV1);
        var client = MeshTranslator.Translate(index, Sidecar);

        // The inbound default route is split at /api: the narrowed copy is limited, the rest is not.
        var routes = InboundRoutes(server);
        Assert.Equal(["/api", "/"], routes.Select(r => r.Match.Prefix));
        Assert.False(routes[1].TypedPerFilterConfig.ContainsKey(RateLimitBuilder.FilterName));
        var action = Assert.Single(Assert.Single(routes[0].Route_.RateLimits).Actions);
        Assert.Equal("type.googleapis.com/envoy.extensions.rate_limit_descriptors.expr.v3.Descriptor", action.Extension.TypedConfig.TypeUrl);
        var expression = action.Extension.TypedConfig.Unpack<Envoy.Extensions.RateLimitDescriptors.Expr.V3.Descriptor>();
        Assert.Equal(("source_principal", "connection.uri_san_peer_certificate", false), (expression.DescriptorKey, expression.Text, expression.SkipIfError));

        var limit = routes[0].TypedPerFilterConfig[RateLimitBuilder.FilterName].Unpack<LocalRateLimitV3.LocalRateLimit>();
        Assert.Equal(10u, limit.TokenBucket.MaxTokens);
        Assert.False(limit.AlwaysConsumeDefaultTokenBucket);
        var buckets = limit.Descriptors.ToDictionary(d => Assert.Single(d.Entries).Value, d => d.TokenBucket.MaxTokens);
        // Every workload's identity has its own bucket, the overrides theirs, even one with no workload yet.
        Assert.Equal(50u, buckets["spiffe://cluster.local/ns/default/sa/bookinfo-productpage"]);
        Assert.Equal(10u, buckets["spiffe://cluster.local/ns/default/sa/bookinfo-ratings"]);
        Assert.Equal(1u, buckets["spiffe://cluster.local/ns/other/sa/batch"]);
        Assert.All(limit.Descriptors, d => Assert.Equal("source_principal", d.Entries[0].Key));

        // A perSource-only RateLimit puts nothing on the callers' outbound routes.
        Assert.All(Routes(client, ReviewsHost), r => Assert.False(r.TypedPerFilterConfig.ContainsKey(RateLimitBuilder.FilterName)));
        // Other services' sidecars are not limited by it.
        Assert.All(InboundRoutes(MeshTranslator.Translate(index, ProxyNode.From(TestNodes.Sidecar("ratings", "v1", 9080)))), r => Assert.Empty(r.Route_.RateLimits));
    }

    [Fact]
    public void Translate_PerSource_AServiceEntryEndpointsServiceAccount_HasItsOwnBucket()
    {
        const string Vm = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: legacy-batch, namespace: default}
            spec:
              hosts: [batch.internal]
              location: MESH_INTERNAL
              ports: [{number: 8080, name: http, protocol: HTTP}]
              resolution: STATIC
              endpoints: [{address: 10.0.0.9, serviceAccount: legacy-batch}]
            """;
        var index = Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries, RateLimit("reviews-per-caller", PerSource), Vm);

        var limit = InboundRoutes(MeshTranslator.Translate(index, ReviewsV1))[0].TypedPerFilterConfig[RateLimitBuilder.FilterName].Unpack<LocalRateLimitV3.LocalRateLimit>();

        Assert.Contains(limit.Descriptors, d => d.Entries[0].Value == "spiffe://cluster.local/ns/default/sa/legacy-batch" && d.TokenBucket.MaxTokens == 10);
    }

    [Fact]
    public void Translate_PerSourceOfTwoServicesOnOneWorkloadPort_TheFirstApplies_TheOtherIsAWarning()
    {
        const string Alias = """
            apiVersion: v1
            kind: Service
            metadata: {name: reviews-alias, namespace: default}
            spec:
              selector: {app: reviews}
              ports: [{name: http, port: 9080}]
            """;
        var other = PerSource.Replace("host: reviews", "host: reviews-alias", StringComparison.Ordinal).Replace("maxTokens: 10,", "maxTokens: 3,", StringComparison.Ordinal);
        var index = Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries, Alias, RateLimit("reviews-per-caller", PerSource), RateLimit("alias-per-caller", other));

        var snapshot = MeshTranslator.Translate(index, ReviewsV1);

        var limited = InboundRoutes(snapshot).Where(r => r.TypedPerFilterConfig.ContainsKey(RateLimitBuilder.FilterName)).ToList();
        var limit = Assert.Single(limited).TypedPerFilterConfig[RateLimitBuilder.FilterName].Unpack<LocalRateLimitV3.LocalRateLimit>();
        Assert.Single(limited[0].Route_.RateLimits);
        var warning = Assert.Single(snapshot.Warnings, w => w.Contains("perSource of", StringComparison.Ordinal));
        var (applied, skipped) = limit.TokenBucket.MaxTokens == 10 ? ("reviews.default", "alias-per-caller") : ("reviews-alias.default", "reviews-per-caller");
        Assert.StartsWith($"RateLimit default/{skipped}", warning, StringComparison.Ordinal);
        Assert.Contains($"it shares with {applied}", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void Translate_PerSourceWithoutMeshMtls_IsAWarning_EveryCallerSharesTheDefault()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(RateLimit("reviews-per-caller", PerSource)), ReviewsV1);

        Assert.Contains(snapshot.Warnings, w => w.StartsWith("RateLimit default/reviews-per-caller", StringComparison.Ordinal) && w.Contains("perSource needs mesh mTLS", StringComparison.Ordinal));
    }

    private static IEnumerable<Cluster> Clusters(XdsSnapshot snapshot) => snapshot.Get(TypeUrls.Cluster)!.Resources.Values.Select(r => (Cluster)r.Message);

    private static Cluster Cluster(XdsSnapshot snapshot, string name) => Clusters(snapshot).Single(c => c.Name == name);

    private static List<Route> Routes(XdsSnapshot snapshot, string virtualHost) =>
        ((RouteConfiguration)snapshot.Get(TypeUrls.RouteConfiguration)!.Resources[IstioNames.HttpProxyRoute].Message).VirtualHosts.Single(h => h.Name == virtualHost).Routes.ToList();
}
