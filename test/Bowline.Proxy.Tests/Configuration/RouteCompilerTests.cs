using Bowline.Proxy.Configuration;
using Bowline.Proxy.Routing;
using Bowline.Proxy.Tests.Infrastructure;
using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Http.Fault.V3;
using Google.Protobuf.WellKnownTypes;
using static Bowline.Proxy.Tests.Infrastructure.EnvoyResources;
using RetryPolicy = Envoy.Config.Route.V3.RetryPolicy;
using RouteAction = Envoy.Config.Route.V3.RouteAction;
using RedirectAction = Envoy.Config.Route.V3.RedirectAction;

namespace Bowline.Proxy.Tests.Configuration;

/// <summary>Route features compiled once per update, and each refusal naming the route and the field.</summary>
public sealed class RouteCompilerTests : IDisposable
{
    private const string Cluster = "outbound|9080||reviews.default.svc.cluster.local";
    private readonly CompilerHarness _compiler = new();

    private static Route WithRetry(string retryOn, uint retries = 2)
    {
        var route = ClusterRoute("r", Prefix("/"), Cluster);
        route.Route_.RetryPolicy = new RetryPolicy
        {
            RetryOn = retryOn,
            NumRetries = retries,
            PerTryTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(2)),
            RetriableStatusCodes = { 409 },
            RetryHostPredicate = { new RetryPolicy.Types.RetryHostPredicate { Name = "envoy.retry_host_predicates.previous_hosts", TypedConfig = Any.Pack(new Envoy.Extensions.Retry.Host.PreviousHosts.V3.PreviousHostsPredicate()) } },
            HostSelectionRetryMaxAttempts = 5,
        };
        return route;
    }

    [Fact]
    public void RetryPolicy_IstioDefaults_CompileToConditionsAndPredicate()
    {
        var entry = _compiler.CompileRoute(WithRetry("connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"));

        var retry = entry.Action!.Retry!;
        Assert.Equal(RetryOn.ConnectFailure | RetryOn.RefusedStream | RetryOn.GrpcUnavailable | RetryOn.GrpcCancelled | RetryOn.RetriableStatusCodes, retry.On);
        Assert.Equal(2, retry.NumRetries);
        Assert.Equal(TimeSpan.FromSeconds(2), retry.PerTryTimeout);
        Assert.True(retry.AvoidPreviousHosts);
        Assert.True(retry.RetriesResponse(409, null));
        Assert.False(retry.RetriesResponse(503, null));
        Assert.True(retry.RetriesResponse(200, 14));
        Assert.True(retry.RetriesConnectFailure);
    }

    [Theory]
    [InlineData("5xx", 500, true)]
    [InlineData("5xx", 404, false)]
    [InlineData("gateway-error", 502, true)]
    [InlineData("gateway-error", 500, false)]
    [InlineData("retriable-4xx", 409, true)]
    [InlineData("reset", 503, false)]
    public void RetryOn_Conditions_AsEnvoyDefinesThem(string retryOn, int status, bool retried)
    {
        var retry = _compiler.CompileRoute(WithRetry(retryOn)).Action!.Retry!;

        Assert.Equal(retried, retry.RetriesResponse(status, null));
    }

    [Fact]
    public void RetryOn_UnknownCondition_IsRejectedNamingIt()
    {
        var error = Assert.Throws<ProxyConfigException>(() => _compiler.CompileRoute(WithRetry("5xx,sometimes")));

        Assert.Contains("route r", error.Message, StringComparison.Ordinal);
        Assert.Contains("'sometimes'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Backoff_IsJitteredWithinEnvoysBounds()
    {
        var retry = _compiler.CompileRoute(WithRetry("5xx")).Action!.Retry!;
        var random = new Random(42);

        var first = Enumerable.Range(0, 1000).Select(_ => retry.Backoff(1, random)).ToList();
        var fifth = Enumerable.Range(0, 1000).Select(_ => retry.Backoff(5, random)).ToList();

        Assert.All(first, d => Assert.InRange(d, TimeSpan.Zero, TimeSpan.FromMilliseconds(25)));
        Assert.All(fifth, d => Assert.InRange(d, TimeSpan.Zero, TimeSpan.FromMilliseconds(250)));
        Assert.True(fifth.Max() > TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public void Redirect_CompilesEveryPart()
    {
        var route = new Route
        {
            Name = "moved",
            Match = Prefix("/old"),
            Redirect = new RedirectAction { HttpsRedirect = true, HostRedirect = "new.example.com", PrefixRewrite = "/new", ResponseCode = RedirectAction.Types.RedirectResponseCode.PermanentRedirect, StripQuery = true },
        };

        var redirect = _compiler.CompileRoute(route).Redirect!;

        Assert.Equal(("https", "new.example.com", "/new", 308, true), (redirect.Scheme, redirect.Host, redirect.PrefixRewrite, redirect.Status, redirect.StripQuery));
    }

    [Fact]
    public void HeaderMutation_WithSubstitution_IsRejectedNamingTheHeader()
    {
        var route = ClusterRoute("r", Prefix("/"), Cluster);
        route.RequestHeadersToAdd.Add(new HeaderValueOption { Header = new HeaderValue { Key = "x-peer", Value = "%DOWNSTREAM_REMOTE_ADDRESS%" } });

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.CompileRoute(route));

        Assert.Contains("header x-peer", error.Message, StringComparison.Ordinal);
        Assert.Contains("substitution", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HeaderMutation_SetAddRemove_AppliedAsEnvoyDoes()
    {
        var route = ClusterRoute("r", Prefix("/"), Cluster);
        route.ResponseHeadersToAdd.Add(new HeaderValueOption { Header = new HeaderValue { Key = "x-set", Value = "new" }, AppendAction = HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd });
        route.ResponseHeadersToAdd.Add(new HeaderValueOption { Header = new HeaderValue { Key = "x-add", Value = "two" }, AppendAction = HeaderValueOption.Types.HeaderAppendAction.AppendIfExistsOrAdd });
        route.ResponseHeadersToRemove.Add("x-secret");
        var headers = new Microsoft.AspNetCore.Http.HeaderDictionary { ["x-set"] = "old", ["x-add"] = "one", ["x-secret"] = "s" };

        _compiler.CompileRoute(route).ResponseHeaders!.Apply(headers, null);

        Assert.Equal("new", headers["x-set"].ToString());
        Assert.Equal("one,two", headers["x-add"].ToString());
        Assert.False(headers.ContainsKey("x-secret"));
    }

    [Fact]
    public void TypedPerFilterConfig_UnknownType_IsRejected_UnlessOptional()
    {
        var route = ClusterRoute("r", Prefix("/"), Cluster);
        route.TypedPerFilterConfig["envoy.filters.http.buffer"] = Any.Pack(new Duration());
        var optional = ClusterRoute("o", Prefix("/"), Cluster);
        optional.TypedPerFilterConfig["envoy.filters.http.buffer"] = Any.Pack(new FilterConfig { Config = Any.Pack(new Duration()), IsOptional = true });

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.CompileRoute(route));
        var compiled = _compiler.CompileRoute(optional);

        Assert.Contains("typed_per_filter_config[envoy.filters.http.buffer]", error.Message, StringComparison.Ordinal);
        Assert.True(compiled.FilterConfigs is null || !compiled.FilterConfigs.ContainsKey("envoy.filters.http.buffer"));
    }

    [Fact]
    public void TypedPerFilterConfig_FaultOverride_AndDisabledWrapper_AreCompiled()
    {
        var route = ClusterRoute("r", Prefix("/"), Cluster);
        route.TypedPerFilterConfig["envoy.filters.http.fault"] = Any.Pack(new HTTPFault { Abort = new FaultAbort { HttpStatus = 503, Percentage = new Envoy.Type.V3.FractionalPercent { Numerator = 100 } } });
        route.TypedPerFilterConfig["envoy.filters.http.cors"] = Any.Pack(new FilterConfig { Disabled = true });

        var compiled = _compiler.CompileRoute(route).FilterConfigs!;

        Assert.IsType<Bowline.Proxy.Filters.Http.Fault.FaultConfig>(compiled["envoy.filters.http.fault"].Config);
        Assert.True(compiled["envoy.filters.http.cors"].Disabled);
    }

    [Fact]
    public void HashPolicy_CompilesHeaderCookieSourceIpAndQuery()
    {
        var route = ClusterRoute("r", Prefix("/"), Cluster);
        route.Route_.HashPolicy.Add(new RouteAction.Types.HashPolicy { Header = new RouteAction.Types.HashPolicy.Types.Header { HeaderName = "X-User" } });
        route.Route_.HashPolicy.Add(new RouteAction.Types.HashPolicy { Cookie = new RouteAction.Types.HashPolicy.Types.Cookie { Name = "session", Ttl = Duration.FromTimeSpan(TimeSpan.FromHours(1)) } });
        route.Route_.HashPolicy.Add(new RouteAction.Types.HashPolicy { ConnectionProperties = new RouteAction.Types.HashPolicy.Types.ConnectionProperties { SourceIp = true } });
        route.Route_.HashPolicy.Add(new RouteAction.Types.HashPolicy { QueryParameter = new RouteAction.Types.HashPolicy.Types.QueryParameter { Name = "id" } });

        var policies = _compiler.CompileRoute(route).Action!.HashPolicies;

        Assert.Equal([HashSource.Header, HashSource.Cookie, HashSource.SourceIp, HashSource.QueryParameter], policies.Select(p => p.Source));
        Assert.Equal("x-user", policies[0].Name);
        Assert.Equal(TimeSpan.FromHours(1), policies[1].CookieTtl);
    }

    [Fact]
    public void PrefixRewrite_OnAnExactMatch_ReplacesTheWholePath()
    {
        var route = new Route { Name = "r", Match = new RouteMatch { Path = "/exact" }, Route_ = new RouteAction { Cluster = Cluster, PrefixRewrite = "/x" } };

        var entry = _compiler.CompileRoute(route);

        Assert.Equal("/x", entry.Action!.RewritePath("/exact", entry.MatchedPrefix));
    }

    [Fact]
    public void RegexRewrite_Re2Substitution_BecomesDotNetGroups()
    {
        Assert.Equal("/${2}/instance/${1}$$", RouteCompiler.Re2Substitution("/\\2/instance/\\1$"));
    }

    [Fact]
    public void PrefixRewrite_ReplacesExactlyTheMatchedPrefix()
    {
        var route = new Route { Name = "r", Match = Prefix("/v1/"), Route_ = new RouteAction { Cluster = Cluster, PrefixRewrite = "/api/" } };

        var entry = _compiler.CompileRoute(route);

        Assert.Equal("/api/items", entry.Action!.RewritePath("/v1/items", entry.MatchedPrefix));
    }

    [Fact]
    public void QueryParameterAndCaseInsensitiveMatches_Apply()
    {
        var route = ClusterRoute("r", new RouteMatch { Prefix = "/API", CaseSensitive = false, QueryParameters = { new QueryParameterMatcher { Name = "v", StringMatch = new Envoy.Type.Matcher.V3.StringMatcher { Exact = "2" } } } }, Cluster);
        var entry = _compiler.CompileRoute(route);

        Assert.True(entry.Matches(Request("/api/x", "?v=2")));
        Assert.False(entry.Matches(Request("/api/x", "?v=1")));
        Assert.False(entry.Matches(Request("/api/x", "")));
    }

    [Fact]
    public void RetryPolicy_PreviousPriorities_CompilesItsUpdateFrequency()
    {
        var route = WithRetry("connect-failure");
        route.Route_.RetryPolicy.RetryPriority = PreviousPriorities(updateFrequency: 2);

        Assert.Equal(2, _compiler.CompileRoute(route).Action!.Retry!.PriorityUpdateFrequency);
    }

    [Fact]
    public void RetryPolicy_OtherRetryPriority_IsRefusedNamingIt()
    {
        var route = WithRetry("connect-failure");
        route.Route_.RetryPolicy.RetryPriority = new RetryPolicy.Types.RetryPriority { Name = "custom", TypedConfig = Any.Pack(new Empty()) };

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.CompileRoute(route));

        Assert.Contains("retry_priority custom", error.Message);
        Assert.Contains("previous_priorities", error.Message);
    }

    [Fact]
    public void RetryPolicy_PreviousPrioritiesWithoutFrequency_IsRefused()
    {
        var route = WithRetry("connect-failure");
        route.Route_.RetryPolicy.RetryPriority = PreviousPriorities(updateFrequency: 0);

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.CompileRoute(route));

        Assert.Contains("update_frequency must be above 0", error.Message);
    }

    /// <summary>PreviousPrioritiesConfig on the wire: field 1, update_frequency, a varint.</summary>
    private static RetryPolicy.Types.RetryPriority PreviousPriorities(int updateFrequency) => new()
    {
        Name = "envoy.retry_priorities.previous_priorities",
        TypedConfig = new Any
        {
            TypeUrl = "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
            Value = updateFrequency == 0 ? Google.Protobuf.ByteString.Empty : Google.Protobuf.ByteString.CopyFrom(8, (byte)updateFrequency),
        },
    };

    private static Microsoft.AspNetCore.Http.HttpRequest Request(string path, string query)
    {
        var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        context.Request.Path = path;
        context.Request.QueryString = new Microsoft.AspNetCore.Http.QueryString(query);
        return context.Request;
    }

    public void Dispose() => _compiler.Dispose();
}
