using System.Globalization;
using Bowline.Proxy.Http;

namespace Bowline.Proxy.Filters.Http.LocalRateLimit;

/// <summary>
/// Envoy's local rate limit at request time: a route's config (and bucket) replaces the filter's. Over the limit and
/// enforced, the request is answered 429 (or the configured status) with flag RL and the configured response headers;
/// with <c>enable_x_ratelimit_headers</c> every response it limits carries <c>x-ratelimit-limit</c>, <c>-remaining</c>
/// and <c>-reset</c>.
/// </summary>
internal sealed class LocalRateLimitFilter(string name, LocalRateLimitConfig config, FilterFactoryContext context) : IHttpFilter
{
    public string Name => name;

    public async ValueTask<FilterStatus> OnRequestAsync(HttpStream stream)
    {
        var limit = stream.FilterConfig<LocalRateLimitConfig>(name) ?? config;
        if (limit.Bucket is not { } bucket || !limit.Enabled.Roll(context.Random))
        {
            return FilterStatus.Continue;
        }
        var stats = limit.Stats;
        stats.Enabled.Increment();
        var (allowed, remaining, reset) = bucket.TryTake();
        if (limit.RateLimitHeaders)
        {
            stream.AddResponseHeader("x-ratelimit-limit", bucket.MaxTokens.ToString(CultureInfo.InvariantCulture));
            stream.AddResponseHeader("x-ratelimit-remaining", remaining.ToString(CultureInfo.InvariantCulture));
            stream.AddResponseHeader("x-ratelimit-reset", reset.ToString(CultureInfo.InvariantCulture));
        }
        if (allowed)
        {
            stats.Ok.Increment();
            return FilterStatus.Continue;
        }
        stats.RateLimited.Increment();
        if (!limit.Enforced.Roll(context.Random))
        {
            return FilterStatus.Continue;
        }
        stats.Enforced.Increment();
        foreach (var (header, value) in limit.ResponseHeaders)
        {
            stream.AddResponseHeader(header, value);
        }
        await stream.SendLocalReplyAsync(limit.Status, "local_rate_limited", ResponseFlags.RateLimited, "local_rate_limited").ConfigureAwait(false);
        return FilterStatus.Stop;
    }
}
