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
    public void Compile_Descriptors_AreRejectedNotIgnored()
    {
        var config = Limit(1, TimeSpan.FromSeconds(1));
        config.Descriptors.Add(new Envoy.Extensions.Common.Ratelimit.V3.LocalRateLimitDescriptor());

        var error = Assert.Throws<ProxyConfigException>(() => Create(config));

        Assert.Contains("descriptors", error.Message, StringComparison.Ordinal);
    }
}
