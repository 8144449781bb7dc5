using Bowline.Proxy.Configuration;
using Bowline.Proxy.Filters.Http;
using Bowline.Proxy.Filters.Http.LocalRateLimit;
using Bowline.Proxy.Http;
using Bowline.Proxy.Stats;
using Bowline.Proxy.Tests.Infrastructure;
using Envoy.Config.Core.V3;
using Envoy.Type.V3;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Proto = Envoy.Extensions.Filters.Http.LocalRatelimit.V3.LocalRateLimit;

namespace Bowline.Proxy.Tests.Filters;

public sealed class LocalRateLimitFilterTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly ProxyStats _stats = new();

    private IHttpFilter Create(Proto config) =>
        new LocalRateLimitFilterFactory(_stats, _time).Create("envoy.filters.http.local_ratelimit", Any.Pack(config), new FilterFactoryContext(_stats, _time, new Random(42), NullLoggerFactory.Instance, "test"), "listener l http filter rl");

    private static Proto Limit(uint tokens, TimeSpan interval, bool enforced = true) => new()
    {
        StatPrefix = "http_local_rate_limiter",
        TokenBucket = new Envoy.Type.V3.TokenBucket { MaxTokens = tokens, TokensPerFill = tokens, FillInterval = Duration.FromTimeSpan(interval) },
        FilterEnabled = new RuntimeFractionalPercent { DefaultValue = new FractionalPercent { Numerator = 100 } },
        FilterEnforced = enforced ? new RuntimeFractionalPercent { DefaultValue = new FractionalPercent { Numerator = 100 } } : null,
        EnableXRatelimitHeaders = Envoy.Extensions.Common.Ratelimit.V3.XRateLimitHeadersRFCVersion.DraftVersion03,
    };

    [Fact]
    public async Task BucketOf3_FourthRequestIn429_FlaggedRL_WithRateLimitHeaders()
    {
        var filter = Create(Limit(3, TimeSpan.FromSeconds(1)));

        var results = new List<(FilterStatus, HttpStream)>();
        for (var i = 0; i < 4; i++)
        {
            var stream = Streams.Create(_time);
            results.Add((await filter.OnRequestAsync(stream), stream));
        }

        Assert.Equal([FilterStatus.Continue, FilterStatus.Continue, FilterStatus.Continue, FilterStatus.Stop], results.Select(r => r.Item1));
        var limited = results[3].Item2;
        Assert.Equal(429, limited.Context.Response.StatusCode);
        Assert.Equal(ResponseFlags.RateLimited, limited.Info.Flags);
        Assert.Equal("3", limited.Context.Response.Headers["x-ratelimit-limit"].ToString());
        Assert.Equal("0", limited.Context.Response.Headers["x-ratelimit-remaining"].ToString());
        Assert.Equal(1, _stats.ValueOf("http_local_rate_limiter.http_local_rate_limit.rate_limited"));
    }

    [Fact]
    public async Task EmptyBucket_RefillsAfterTheFillInterval()
    {
        var filter = Create(Limit(1, TimeSpan.FromSeconds(1)));
        await filter.OnRequestAsync(Streams.Create(_time));

        var limited = await filter.OnRequestAsync(Streams.Create(_time));
        _time.Advance(TimeSpan.FromSeconds(1));
        var refilled = await filter.OnRequestAsync(Streams.Create(_time));

        Assert.Equal(FilterStatus.Stop, limited);
        Assert.Equal(FilterStatus.Continue, refilled);
    }

    [Fact]
    public async Task NotEnforced_CountsButLetsThrough()
    {
        var filter = Create(Limit(1, TimeSpan.FromSeconds(1), enforced: false));
        await filter.OnRequestAsync(Streams.Create(_time));

        var second = await filter.OnRequestAsync(Streams.Create(_time));

        Assert.Equal(FilterStatus.Continue, second);
        Assert.Equal(1, _stats.ValueOf("http_local_rate_limiter.http_local_rate_limit.rate_limited"));
        Assert.Equal(0, _stats.ValueOf("http_local_rate_limiter.http_local_rate_limit.enforced"));
    }

    [Fact]
    public void Compile_FillIntervalBelow50ms_IsRejected()
    {
        var error = Assert.Throws<ProxyConfigException>(() => Create(Limit(1, TimeSpan.FromMilliseconds(10))));

        Assert.Contains("fill_interval", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_ZeroTokensPerFill_IsRejected_AsEnvoyDoes()
    {
        var config = Limit(2, TimeSpan.FromSeconds(1));
        config.TokenBucket.TokensPerFill = 0;

        var error = Assert.Throws<ProxyConfigException>(() => Create(config));

        Assert.Contains("tokens_per_fill must be above 0", error.Message, StringComparison.Ordinal);
    }

    private static Envoy.Extensions.Common.Ratelimit.V3.LocalRateLimitDescriptor Descriptor(string key, string value, uint tokens) => new()
    {
        Entries = { new Envoy.Extensions.Common.Ratelimit.V3.RateLimitDescriptor.Types.Entry { Key = key, Value = value } },
        TokenBucket = new Envoy.Type.V3.TokenBucket { MaxTokens = tokens, TokensPerFill = tokens, FillInterval = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)) },
    };

    /// <summary>A route table whose one route carries <paramref name="limits"/> as its <c>rate_limits</c>.</summary>
    private static Bowline.Proxy.Routing.RouteTable Routes(CompilerHarness harness, params Envoy.Config.Route.V3.RateLimit[] limits)
    {
        var action = new Envoy.Config.Route.V3.RouteAction { Cluster = "outbound|9080||reviews" };
        action.RateLimits.AddRange(limits);
        return harness.Routes.Compile(new Envoy.Config.Route.V3.RouteConfiguration
        {
            Name = "9080",
            VirtualHosts = { new Envoy.Config.Route.V3.VirtualHost { Name = "reviews", Domains = { "*" }, Routes = { new Envoy.Config.Route.V3.Route { Name = "default", Match = new Envoy.Config.Route.V3.RouteMatch { Prefix = "/" }, Route_ = action } } } },
        });
    }

    private static Envoy.Config.Route.V3.RateLimit ByHeader(string header, string key, bool skipIfAbsent = false) => new()
    {
        Actions = { new Envoy.Config.Route.V3.RateLimit.Types.Action { RequestHeaders = new Envoy.Config.Route.V3.RateLimit.Types.Action.Types.RequestHeaders { HeaderName = header, DescriptorKey = key, SkipIfAbsent = skipIfAbsent } } },
    };

    private static Envoy.Config.Route.V3.RateLimit ByPeerIdentity(string expression = "connection.uri_san_peer_certificate") => new()
    {
        Actions =
        {
            new Envoy.Config.Route.V3.RateLimit.Types.Action
            {
                Extension = new TypedExtensionConfig
                {
                    Name = "envoy.rate_limit_descriptors.expr",
                    TypedConfig = Any.Pack(new Envoy.Extensions.RateLimitDescriptors.Expr.V3.Descriptor { DescriptorKey = "source_principal", Text = expression }),
                },
            },
        },
    };

    [Fact]
    public async Task Descriptors_EachValueTakesFromItsOwnBucket_UnmatchedRequestsShareTheDefault()
    {
        using var harness = new CompilerHarness();
        var routes = Routes(harness, ByHeader("x-user", "user"));
        var config = Limit(1, TimeSpan.FromSeconds(1));
        config.Descriptors.Add(Descriptor("user", "alice", 2));
        config.Descriptors.Add(Descriptor("user", "bob", 2));
        config.AlwaysConsumeDefaultTokenBucket = false;
        var filter = Create(config);

        async Task<FilterStatus> Send(string? user) => await filter.OnRequestAsync(Streams.Create(_time, request: r =>
        {
            if (user is not null)
            {
                r.Headers["x-user"] = user;
            }
        }, routes: routes));

        // alice's bucket of 2 runs out on her third; bob still has his; carol (no descriptor) and a request without the
        // header (no descriptor at all) share the default bucket of 1.
        Assert.Equal([FilterStatus.Continue, FilterStatus.Continue, FilterStatus.Stop], [await Send("alice"), await Send("alice"), await Send("alice")]);
        Assert.Equal([FilterStatus.Continue, FilterStatus.Continue], [await Send("bob"), await Send("bob")]);
        Assert.Equal([FilterStatus.Continue, FilterStatus.Stop], [await Send("carol"), await Send(null)]);
    }

    [Fact]
    public async Task Descriptors_AlwaysConsumeDefaultByDefault_TheDefaultBucketLimitsMatchedRequestsToo()
    {
        using var harness = new CompilerHarness();
        var routes = Routes(harness, ByHeader("x-user", "user"));
        var config = Limit(1, TimeSpan.FromSeconds(1));
        config.Descriptors.Add(Descriptor("user", "alice", 5));
        var filter = Create(config);

        var first = await filter.OnRequestAsync(Streams.Create(_time, request: r => r.Headers["x-user"] = "alice", routes: routes));
        var second = await filter.OnRequestAsync(Streams.Create(_time, request: r => r.Headers["x-user"] = "alice", routes: routes));

        Assert.Equal((FilterStatus.Continue, FilterStatus.Stop), (first, second));
    }

    [Fact]
    public async Task PeerIdentityDescriptor_PlaintextCaller_HasNoIdentity_AndFallsToTheDefaultBucket()
    {
        using var harness = new CompilerHarness();
        var routes = Routes(harness, ByPeerIdentity());
        var config = Limit(1, TimeSpan.FromSeconds(1));
        config.Descriptors.Add(Descriptor("source_principal", "spiffe://cluster.local/ns/default/sa/productpage", 100));
        config.AlwaysConsumeDefaultTokenBucket = false;
        var filter = Create(config);

        // A forged header cannot stand in for a certificate: the identity comes from the TLS connection only.
        var first = await filter.OnRequestAsync(Streams.Create(_time, request: r => r.Headers["x-forwarded-client-cert"] = "URI=spiffe://cluster.local/ns/default/sa/productpage", routes: routes));
        var second = await filter.OnRequestAsync(Streams.Create(_time, routes: routes));

        Assert.Equal((FilterStatus.Continue, FilterStatus.Stop), (first, second));
    }

    [Theory]
    [InlineData("stage", "stage 1 is not supported")]
    [InlineData("descriptor-without-bucket", "token_bucket is required")]
    [InlineData("duplicate", "the same entries are given twice")]
    [InlineData("no-default", "descriptors need a token_bucket as well")]
    [InlineData("empty-value", "each with a key and a value")]
    public void Compile_BadDescriptors_AreRejectedWithTheReason(string problem, string message)
    {
        var config = Limit(1, TimeSpan.FromSeconds(1));
        config.Descriptors.Add(Descriptor("user", "alice", 2));
        switch (problem)
        {
            case "stage":
                config.Stage = 1;
                break;
            case "descriptor-without-bucket":
                config.Descriptors[0].TokenBucket = null;
                break;
            case "duplicate":
                config.Descriptors.Add(Descriptor("user", "alice", 3));
                break;
            case "no-default":
                config.TokenBucket = null;
                break;
            case "empty-value":
                config.Descriptors.Add(Descriptor("user", "", 3));
                break;
        }

        var error = Assert.Throws<ProxyConfigException>(() => Create(config));

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RouteRateLimits_UnsupportedActionsAndExpressions_AreRejectedByName()
    {
        using var harness = new CompilerHarness();
        var sourceCluster = new Envoy.Config.Route.V3.RateLimit { Actions = { new Envoy.Config.Route.V3.RateLimit.Types.Action { SourceCluster = new() } } };

        var action = Assert.Throws<ProxyConfigException>(() => Routes(harness, sourceCluster));
        var expression = Assert.Throws<ProxyConfigException>(() => Routes(harness, ByPeerIdentity("request.headers['x-user']")));

        Assert.Contains("rate limit action SourceCluster is not supported", action.Message, StringComparison.Ordinal);
        Assert.Contains("rate_limits[0]", action.Message, StringComparison.Ordinal);
        Assert.Contains("expression 'request.headers['x-user']' is not supported", expression.Message, StringComparison.Ordinal);
    }
}
