using Bowline.Proxy.Configuration;
using Bowline.Proxy.Routing;
using Bowline.Proxy.Tests.Infrastructure;
using Envoy.Config.Route.V3;
using Envoy.Type.Matcher.V3;
using StringMatcher = Envoy.Type.Matcher.V3.StringMatcher;
using Microsoft.AspNetCore.Http;
using static Bowline.Proxy.Tests.Infrastructure.EnvoyResources;

namespace Bowline.Proxy.Tests.Routing;

/// <summary>Route matches compiled from Envoy <c>RouteConfiguration</c> protos, as a sidecar receives them over RDS.</summary>
public sealed class RouteEntryMatchTests : IDisposable
{
    private readonly CompilerHarness _compiler = new();

    [Theory]
    [InlineData("/api", true)]
    [InlineData("/api/v1/books", true)]
    [InlineData("/apix", true)]
    [InlineData("/api?x=1", true)]
    [InlineData("/ap", false)]
    [InlineData("/API", false)]
    [InlineData("/", false)]
    public void Matches_Prefix_MatchesPathsThatStartWithIt(string path, bool expected)
    {
        var route = Compile(new RouteMatch { Prefix = "/api" });

        Assert.Equal(expected, route.Matches(Requests.Create(path)));
    }

    [Theory]
    [InlineData("/health", true)]
    [InlineData("/health?verbose=1", true)]
    [InlineData("/health/", false)]
    [InlineData("/healthz", false)]
    [InlineData("/Health", false)]
    public void Matches_ExactPath_MatchesOnlyThatPathIgnoringTheQuery(string path, bool expected)
    {
        var route = Compile(new RouteMatch { Path = "/health" });

        Assert.Equal(expected, route.Matches(Requests.Create(path)));
    }

    [Theory]
    [InlineData("/api/v1", true)]
    [InlineData("/api/v22", true)]
    [InlineData("/api/v1?page=2", true)]
    [InlineData("/api/v1/x", false)]
    [InlineData("/x/api/v1", false)]
    [InlineData("/api/v", false)]
    public void Matches_SafeRegex_IsAnchoredToTheWholePath(string path, bool expected)
    {
        var route = Compile(new RouteMatch { SafeRegex = new RegexMatcher { Regex = "/api/v[0-9]+" } });

        Assert.Equal(expected, route.Matches(Requests.Create(path)));
    }

    [Theory]
    [InlineData("jason", true)]
    [InlineData("Jason", false)]
    [InlineData("jason2", false)]
    [InlineData(null, false)]
    public void Matches_HeaderExact_MatchesOnlyThatValue(string? value, bool expected)
    {
        var route = Compile(Header("end-user", new StringMatcher { Exact = "jason" }));

        Assert.Equal(expected, route.Matches(WithHeader("end-user", value)));
    }

    [Theory]
    [InlineData("JASON", true)]
    [InlineData("mike", false)]
    public void Matches_HeaderExactIgnoreCase_MatchesAnyCase(string value, bool expected)
    {
        var route = Compile(Header("end-user", new StringMatcher { Exact = "jason", IgnoreCase = true }));

        Assert.Equal(expected, route.Matches(WithHeader("end-user", value)));
    }

    [Theory]
    [InlineData("Mozilla/5.0 (X11)", true)]
    [InlineData("curl/8.0", false)]
    [InlineData(null, false)]
    public void Matches_HeaderPrefix_MatchesValuesThatStartWithIt(string? value, bool expected)
    {
        var route = Compile(Header("user-agent", new StringMatcher { Prefix = "Mozilla/" }));

        Assert.Equal(expected, route.Matches(WithHeader("user-agent", value)));
    }

    [Theory]
    [InlineData("v1", true)]
    [InlineData("v42", true)]
    [InlineData("v1-canary", false)]
    [InlineData("xv1", false)]
    public void Matches_HeaderSafeRegex_IsAnchoredToTheWholeValue(string value, bool expected)
    {
        var route = Compile(Header("x-version", new StringMatcher { SafeRegex = new RegexMatcher { Regex = "v[0-9]+" } }));

        Assert.Equal(expected, route.Matches(WithHeader("x-version", value)));
    }

    [Theory]
    [InlineData("anything", true)]
    [InlineData("", true)]
    [InlineData(null, false)]
    public void Matches_HeaderPresent_MatchesAnyValueButNotAbsence(string? value, bool expected)
    {
        var route = Compile(new RouteMatch { Prefix = "/", Headers = { new HeaderMatcher { Name = "x-canary", PresentMatch = true } } });

        Assert.Equal(expected, route.Matches(WithHeader("x-canary", value)));
    }

    [Theory]
    [InlineData("anything", false)]
    [InlineData(null, true)]
    public void Matches_HeaderPresentFalse_MatchesOnlyAbsence(string? value, bool expected)
    {
        // Envoy: "If specified as false, header match will be performed based on whether the header is absent."
        var route = Compile(new RouteMatch { Prefix = "/", Headers = { new HeaderMatcher { Name = "x-canary", PresentMatch = false } } });

        Assert.Equal(expected, route.Matches(WithHeader("x-canary", value)));
    }

    [Theory]
    [InlineData("anything", false)]
    [InlineData(null, true)]
    public void Matches_HeaderPresentInverted_MatchesOnlyAbsence(string? value, bool expected)
    {
        var route = Compile(new RouteMatch { Prefix = "/", Headers = { new HeaderMatcher { Name = "x-canary", PresentMatch = true, InvertMatch = true } } });

        Assert.Equal(expected, route.Matches(WithHeader("x-canary", value)));
    }

    [Theory]
    [InlineData("mike", true)]
    [InlineData("jason", false)]
    public void Matches_HeaderInverted_MatchesEveryOtherValue(string value, bool expected)
    {
        var route = Compile(Header("end-user", new StringMatcher { Exact = "jason" }, invert: true));

        Assert.Equal(expected, route.Matches(WithHeader("end-user", value)));
    }

    [Fact]
    public void Matches_HeaderInvertedAndAbsent_DoesNotMatch()
    {
        // Envoy: a missing header fails every header match except an inverted present_match (unless
        // treat_missing_header_as_empty), so "end-user is not jason" does not route requests without end-user.
        var route = Compile(Header("end-user", new StringMatcher { Exact = "jason" }, invert: true));

        Assert.False(route.Matches(Requests.Create("/")));
    }

    [Theory]
    [InlineData("GET", true)]
    [InlineData("POST", false)]
    public void Matches_MethodPseudoHeader_MatchesTheRequestMethod(string method, bool expected)
    {
        var route = Compile(Header(":method", new StringMatcher { Exact = "GET" }));

        Assert.Equal(expected, route.Matches(Requests.Create("/", method: method)));
    }

    [Fact]
    public void Matches_AuthorityPseudoHeader_MatchesTheHost()
    {
        var route = Compile(Header(":authority", new StringMatcher { Suffix = ":9080" }));

        Assert.True(route.Matches(Requests.Create("/", host: "reviews:9080")));
        Assert.False(route.Matches(Requests.Create("/", host: "reviews")));
    }

    [Fact]
    public void Matches_HeaderNameInUpperCase_MatchesCaseInsensitively()
    {
        var route = Compile(Header("End-User", new StringMatcher { Exact = "jason" }));

        Assert.True(route.Matches(Requests.Create("/", headers: ("end-user", "jason"))));
    }

    [Fact]
    public void Matches_RepeatedHeader_MatchesTheCommaJoinedValues()
    {
        // Envoy matches a repeated header against all its values joined with ",".
        var route = Compile(Header("x-tag", new StringMatcher { Exact = "a,b" }));

        Assert.True(route.Matches(Requests.Create("/", headers: [("x-tag", "a"), ("x-tag", "b")])));
    }

    [Fact]
    public void Matches_PathAndHeaders_AllMustMatch()
    {
        var route = Compile(new RouteMatch
        {
            Prefix = "/reviews",
            Headers =
            {
                new HeaderMatcher { Name = "end-user", StringMatch = new StringMatcher { Exact = "jason" } },
                new HeaderMatcher { Name = ":method", StringMatch = new StringMatcher { Exact = "GET" } },
            },
        });

        Assert.True(route.Matches(Requests.Create("/reviews/1", headers: ("end-user", "jason"))));
        Assert.False(route.Matches(Requests.Create("/reviews/1", method: "DELETE", headers: ("end-user", "jason"))));
        Assert.False(route.Matches(Requests.Create("/reviews/1", headers: ("end-user", "mike"))));
        Assert.False(route.Matches(Requests.Create("/ratings/1", headers: ("end-user", "jason"))));
    }

    [Theory]
    [InlineData("/api/v1/books", "v1")]
    [InlineData("/api/v2/books", "api")]
    [InlineData("/static/logo.png", "root")]
    public void FirstMatch_OverlappingRoutes_TheFirstListedWins(string path, string expected)
    {
        var host = CompileHost(
            ClusterRoute("v1", Prefix("/api/v1"), ReviewsCluster),
            ClusterRoute("api", Prefix("/api"), ReviewsCluster),
            ClusterRoute("root", Prefix("/"), ReviewsCluster));

        Assert.Equal(expected, FirstMatch(host, Requests.Create(path))?.Name);
    }

    [Fact]
    public void FirstMatch_CatchAllListedFirst_ShadowsLaterRoutes()
    {
        var host = CompileHost(
            ClusterRoute("root", Prefix("/"), ReviewsCluster),
            ClusterRoute("v1", Prefix("/api/v1"), ReviewsCluster));

        Assert.Equal("root", FirstMatch(host, Requests.Create("/api/v1/books"))?.Name);
    }

    [Fact]
    public void FirstMatch_HeaderRouteBeforeDefault_SendsOnlyMatchingUsersToIt()
    {
        // Bookinfo's classic: jason sees reviews v2, everyone else v1.
        var jason = ClusterRoute("jason", new RouteMatch { Prefix = "/", Headers = { new HeaderMatcher { Name = "end-user", StringMatch = new StringMatcher { Exact = "jason" } } } }, "outbound|9080|v2|reviews.default.svc.cluster.local");
        var host = CompileHost(jason, ClusterRoute("default", Prefix("/"), "outbound|9080|v1|reviews.default.svc.cluster.local"));

        Assert.Equal("jason", FirstMatch(host, Requests.Create("/reviews/0", headers: ("end-user", "jason")))?.Name);
        Assert.Equal("default", FirstMatch(host, Requests.Create("/reviews/0"))?.Name);
    }

    [Fact]
    public void Compile_HeaderRangeMatch_IsRejectedNamingTheRouteAndHeader()
    {
        var match = new RouteMatch { Prefix = "/", Headers = { new HeaderMatcher { Name = "x-shard", RangeMatch = new Envoy.Type.V3.Int64Range { Start = 0, End = 10 } } } };

        var error = Assert.Throws<ProxyConfigException>(() => Compile(match));

        Assert.Contains("route shard", error.Message, StringComparison.Ordinal);
        Assert.Contains("header x-shard", error.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _compiler.Dispose();

    private RouteEntry Compile(RouteMatch match) => _compiler.CompileRoute(ClusterRoute("shard", match, ReviewsCluster));

    private VirtualHostEntry CompileHost(params Route[] routes) =>
        _compiler.CompileRoutes(RouteConfig("9080", VirtualHost("reviews", ["reviews", "reviews:9080"], routes))).FindVirtualHost("reviews")!;

    /// <summary>What the request handler does inside a virtual host: the first route that matches.</summary>
    private static RouteEntry? FirstMatch(VirtualHostEntry host, HttpRequest request) => host.Routes.FirstOrDefault(r => r.Matches(request));

    private static RouteMatch Header(string name, StringMatcher matcher, bool invert = false) =>
        new() { Prefix = "/", Headers = { new HeaderMatcher { Name = name, StringMatch = matcher, InvertMatch = invert } } };

    private static HttpRequest WithHeader(string name, string? value) =>
        value is null ? Requests.Create("/") : Requests.Create("/", headers: (name, value));
}
