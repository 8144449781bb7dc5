using Bowline.Proxy.Configuration;
using Bowline.Proxy.Filters.Http;
using Bowline.Proxy.Tests.Infrastructure;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Http.JwtAuthn.V3;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.Proxy.Tests.JwtAuthn;

/// <summary>Rules, requirement combinations, per-route config and the config checks, with Istio's shapes first.</summary>
public sealed class JwtAuthnRequirementTests : JwtAuthnTestBase
{
    [Fact]
    public async Task Istio_MissingToken_Passes_WithoutMetadata()
    {
        var filter = Create(Istio(Provider()));

        var (status, stream) = await RunAsync(filter);

        Assert.Equal(FilterStatus.Continue, status);
        Assert.Null(stream.Metadata);
        Assert.Equal(1, Counter("allowed"));
    }

    [Fact]
    public async Task Istio_ValidToken_Passes_AndPublishesThePayload()
    {
        var filter = Create(Istio(Provider()));

        var (status, stream) = await RunAsync(filter, Bearer(Keys.Sign(Payload())));

        Assert.Equal(FilterStatus.Continue, status);
        Assert.Equal(Issuer, MetadataPayload(stream)!.Fields["iss"].StringValue);
    }

    [Fact]
    public async Task Istio_InvalidToken_Is401()
    {
        var filter = Create(Istio(Provider()));

        var (_, expired) = await RunAsync(filter, Bearer(Keys.Sign(Payload(exp: Now - 3600))));
        var (_, garbage) = await RunAsync(filter, Bearer("abc.def.ghi"));
        var (_, foreign) = await RunAsync(filter, Bearer(Keys.Sign(Payload(issuer: "https://other.example.com"))));

        AssertDenied(expired, 401, "Jwt is expired");
        AssertDenied(garbage, 401, "Jwt header is an invalid JSON");
        AssertDenied(foreign, 401, "Jwt issuer is not configured");
        Assert.Equal(3, Counter("denied"));
    }

    [Fact]
    public async Task Istio_TwoProviders_EachTokenChecksAgainstItsIssuer()
    {
        // Istio's shape for two jwtRules: any of {P0, P1, all of {any {P0, allow_missing}, any {P1, allow_missing}}}.
        var second = Provider(issuer: "https://second.example.com");
        var config = Config(
            AnyOf(Named("origins-0"), Named("origins-1"), AllOf(AnyOf(Named("origins-0"), AllowMissing()), AnyOf(Named("origins-1"), AllowMissing()))),
            ("origins-0", Provider()), ("origins-1", second));
        var filter = Create(config);

        var (first, _) = await RunAsync(filter, Bearer(Keys.Sign(Payload())));
        var (other, _) = await RunAsync(filter, Bearer(Keys.Sign(Payload(issuer: "https://second.example.com"))));
        var (none, _) = await RunAsync(filter);
        var (_, bad) = await RunAsync(filter, Bearer(Keys.Sign(Payload(issuer: "https://second.example.com", exp: Now - 3600))));

        Assert.Equal(FilterStatus.Continue, first);
        Assert.Equal(FilterStatus.Continue, other);
        Assert.Equal(FilterStatus.Continue, none);
        AssertDenied(bad, 401, "Jwt is expired");
    }

    [Fact]
    public async Task RequiredProvider_MissingToken_Is401WithoutInvalidToken()
    {
        var filter = Create(Config(Named("p"), ("p", Provider())));

        var (_, stream) = await RunAsync(filter);

        AssertDenied(stream, 401, "Jwt is missing", invalidToken: false);
    }

    [Fact]
    public async Task TwoAuthorizationHeaders_AreRefused()
    {
        var filter = Create(Istio(Provider()));
        var token = Keys.Sign(Payload());

        var (_, stream) = await RunAsync(filter, r => r.Headers["authorization"] = new Microsoft.Extensions.Primitives.StringValues(["Bearer " + token, "Bearer " + token]));

        AssertDenied(stream, 401, "Found multiple Jwt tokens");
    }

    [Fact]
    public async Task HeaderAndQueryParameter_FromTheSameProvider_AreRefused()
    {
        var filter = Create(Istio(Provider()));
        var token = Keys.Sign(Payload());

        var (_, stream) = await RunAsync(filter, r =>
        {
            r.Headers.Authorization = "Bearer " + token;
            r.QueryString = new Microsoft.AspNetCore.Http.QueryString("?access_token=" + token);
        });

        AssertDenied(stream, 401, "Found multiple Jwt tokens");
    }

    [Fact]
    public async Task AllowMissingOrFailed_InvalidTokenPasses_WithoutMetadata()
    {
        var filter = Create(Config(AllowMissingOrFailed(), ("p", Provider())));

        var (bad, badStream) = await RunAsync(filter, Bearer(Keys.Sign(Payload(exp: Now - 3600))));
        var (good, goodStream) = await RunAsync(filter, Bearer(Keys.Sign(Payload())));

        Assert.Equal(FilterStatus.Continue, bad);
        Assert.Null(badStream.Metadata);
        Assert.Equal(FilterStatus.Continue, good);
        Assert.NotNull(MetadataPayload(goodStream));
    }

    [Fact]
    public async Task AllowMissingAlone_InvalidTokenFails_MissingPasses()
    {
        var filter = Create(Config(AllowMissing(), ("p", Provider())));

        var (missing, _) = await RunAsync(filter);
        var (_, bad) = await RunAsync(filter, Bearer(Keys.Sign(Payload(exp: Now - 3600))));

        Assert.Equal(FilterStatus.Continue, missing);
        AssertDenied(bad, 401, "Jwt is expired");
    }

    [Fact]
    public async Task RequiresAll_NeedsEveryProvider()
    {
        var a = Provider();
        a.FromHeaders.Add(new JwtHeader { Name = "x-token-a" });
        var b = Provider(issuer: "https://b.example.com");
        b.FromHeaders.Add(new JwtHeader { Name = "x-token-b" });
        var filter = Create(Config(AllOf(Named("a"), Named("b")), ("a", a), ("b", b)));
        var tokenA = Keys.Sign(Payload());
        var tokenB = Keys.Sign(Payload(issuer: "https://b.example.com"));

        var (both, stream) = await RunAsync(filter, r =>
        {
            r.Headers["x-token-a"] = tokenA;
            r.Headers["x-token-b"] = tokenB;
        });
        var (_, onlyA) = await RunAsync(filter, r => r.Headers["x-token-a"] = tokenA);

        Assert.Equal(FilterStatus.Continue, both);
        Assert.False(stream.Context.Request.Headers.ContainsKey("x-token-a"));
        AssertDenied(onlyA, 401, "Jwt is missing", invalidToken: false);
    }

    [Fact]
    public async Task RequiresAny_ReportsTheMostTellingFailure()
    {
        var a = Provider();
        var b = Provider(issuer: "https://b.example.com");
        b.FromHeaders.Add(new JwtHeader { Name = "x-token-b" });
        var filter = Create(Config(AnyOf(Named("b"), Named("a")), ("a", a), ("b", b)));

        // b finds nothing (missing), a finds a token of an unknown issuer: the issuer error wins over missing.
        var (_, unknown) = await RunAsync(filter, Bearer(Keys.Sign(Payload(issuer: "https://nobody.example.com"))));
        // b sees an expired token of its own: a real failure wins.
        var (_, expired) = await RunAsync(filter, r => r.Headers["x-token-b"] = Keys.Sign(Payload(issuer: "https://b.example.com", exp: Now - 3600)));
        var (ok, _) = await RunAsync(filter, r => r.Headers["x-token-b"] = Keys.Sign(Payload(issuer: "https://b.example.com")));

        AssertDenied(unknown, 401, "Jwt issuer is not configured");
        AssertDenied(expired, 401, "Jwt is expired");
        Assert.Equal(FilterStatus.Continue, ok);
    }

    [Fact]
    public async Task Rules_FirstMatchApplies_RuleWithoutRequirementNeedsNothing()
    {
        var config = new JwtAuthentication();
        config.Providers["p"] = Provider();
        config.Rules.Add(new RequirementRule { Match = new RouteMatch { Prefix = "/healthz" } });
        var apiMatch = new RouteMatch { Prefix = "/" };
        apiMatch.Headers.Add(new HeaderMatcher { Name = "x-api", PresentMatch = true });
        config.Rules.Add(new RequirementRule { Match = apiMatch, Requires = Named("p") });
        var filter = Create(config);

        var (health, _) = await RunAsync(filter, r => r.Path = "/healthz/ready");
        var (_, api) = await RunAsync(filter, r => r.Headers["x-api"] = "1");
        var (other, _) = await RunAsync(filter);

        Assert.Equal(FilterStatus.Continue, health);
        AssertDenied(api, 401, "Jwt is missing", invalidToken: false);
        Assert.Equal(FilterStatus.Continue, other);
    }

    [Fact]
    public async Task PerRoute_Disabled_SkipsVerification()
    {
        var filter = Create(Config(Named("p"), ("p", Provider())));

        var (status, _) = await RunAsync(filter, route: RouteWith(new PerRouteConfig { Disabled = true }));

        Assert.Equal(FilterStatus.Continue, status);
    }

    [Fact]
    public async Task PerRoute_RequirementName_PicksFromTheMap()
    {
        var config = new JwtAuthentication();
        config.Providers["p"] = Provider();
        config.RequirementMap["strict"] = Named("p");
        var filter = Create(config);

        var (_, missing) = await RunAsync(filter, route: RouteWith(new PerRouteConfig { RequirementName = "strict" }));
        var (ok, _) = await RunAsync(filter, r => r.Headers.Authorization = "Bearer " + Keys.Sign(Payload()), RouteWith(new PerRouteConfig { RequirementName = "strict" }));

        AssertDenied(missing, 401, "Jwt is missing", invalidToken: false);
        Assert.Equal(FilterStatus.Continue, ok);
    }

    [Fact]
    public async Task PerRoute_UnknownRequirementName_Is403()
    {
        var config = new JwtAuthentication();
        config.Providers["p"] = Provider();
        config.RequirementMap["b"] = Named("p");
        config.RequirementMap["a"] = AllowMissing();
        var filter = Create(config);

        var (status, stream) = await RunAsync(filter, route: RouteWith(new PerRouteConfig { RequirementName = "nope" }));

        Assert.Equal(FilterStatus.Stop, status);
        Assert.Equal(403, stream.Context.Response.StatusCode);
        Assert.Equal("Failed JWT authentication: Wrong requirement_name: nope. It should be one of [a,b]", Streams.Body(stream));
        Assert.Equal("jwt_authn_access_denied{Wrong_requirement_name:_nope._It_should_be_one_of_[a,b]}", stream.Info.ResponseCodeDetails);
        Assert.Equal(1, Counter("denied"));
    }

    [Fact]
    public async Task CorsPreflight_BypassesTheRequirement()
    {
        var config = Config(Named("p"), ("p", Provider()));
        config.BypassCorsPreflight = true;
        var filter = Create(config);

        var (status, _) = await RunAsync(filter, r =>
        {
            r.Method = "OPTIONS";
            r.Headers.Origin = "https://app.example.com";
            r.Headers.AccessControlRequestMethod = "POST";
        });

        Assert.Equal(FilterStatus.Continue, status);
        Assert.Equal(1, Counter("cors_preflight_bypassed"));
    }

    [Fact]
    public async Task StripFailureResponse_AnswersWithoutBodyOrHeader()
    {
        var config = Config(Named("p"), ("p", Provider()));
        config.StripFailureResponse = true;
        var filter = Create(config);

        var (_, stream) = await RunAsync(filter);

        Assert.Equal(401, stream.Context.Response.StatusCode);
        Assert.Equal("", Streams.Body(stream));
        Assert.False(stream.Context.Response.Headers.ContainsKey("www-authenticate"));
        Assert.Equal("jwt_authn_access_denied{Jwt_is_missing}", stream.Info.ResponseCodeDetails);
    }

    [Fact]
    public void RemoteJwks_IsNackedWithTheWayOut()
    {
        var provider = new JwtProvider { Issuer = Issuer, RemoteJwks = new RemoteJwks { HttpUri = new Envoy.Config.Core.V3.HttpUri { Uri = "https://issuer.example.com/jwks", Cluster = "jwks" } } };

        var e = Assert.Throws<ProxyConfigException>(() => Create(Config(Named("p"), ("p", provider))));

        Assert.Contains("provider p: remote_jwks is not supported", e.Message, StringComparison.Ordinal);
        Assert.Contains("local_jwks", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownProvider_FailedStatusInMetadata_FilterStateRules_AndShortLists_AreNacked()
    {
        var failedStatus = Provider();
        failedStatus.FailedStatusInMetadata = "failure";
        var stateRules = Config(Named("p"), ("p", Provider()));
        stateRules.FilterStateRules = new FilterStateRule { Name = "jwt_selector" };

        Assert.Contains("Required provider ['q'] is not configured", Assert.Throws<ProxyConfigException>(() => Create(Config(Named("q"), ("p", Provider())))).Message, StringComparison.Ordinal);
        Assert.Contains("failed_status_in_metadata", Assert.Throws<ProxyConfigException>(() => Create(Config(Named("p"), ("p", failedStatus)))).Message, StringComparison.Ordinal);
        Assert.Contains("filter_state_rules", Assert.Throws<ProxyConfigException>(() => Create(stateRules)).Message, StringComparison.Ordinal);
        Assert.Contains("at least 2", Assert.Throws<ProxyConfigException>(() => Create(Config(AnyOf(Named("p")), ("p", Provider())))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PerRouteConfig_WithNeitherField_IsNacked()
    {
        var e = Assert.Throws<ProxyConfigException>(() => new Bowline.Proxy.Filters.Http.JwtAuthn.JwtAuthnFilterFactory().CompilePerRoute(Any.Pack(new PerRouteConfig()), "route r"));

        Assert.Contains("disabled: true or a non-empty requirement_name", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Catalog_RegistersTheFilterAndItsPerRouteType()
    {
        var catalog = new HttpFilterCatalog(new Bowline.Proxy.Filters.Http.Router.RouterFilterFactory(null!, new Random(1), Time, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance), Stats, Time, new Bowline.Proxy.Telemetry.IstioMetrics(Stats), null!);

        Assert.NotNull(catalog.ForConfig("type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"));
        Assert.NotNull(catalog.ForPerRoute("type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig"));
    }
}
