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
        var (allowed, remaining, reset) = Take(stream, limit, ref bucket);
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

    /// <summary>
    /// Envoy's order: the buckets of the descriptors the route's rate_limits produced and the config names, then the
    /// default bucket when none matched or always_consume_default_token_bucket says so. The first empty bucket limits
    /// the request; <paramref name="bucket"/> ends as the bucket the x-ratelimit headers describe.
    /// </summary>
    private static (bool Allowed, int Remaining, int Reset) Take(HttpStream stream, LocalRateLimitConfig limit, ref TokenBucket bucket)
    {
        var matched = false;
        if (limit.Descriptors is { } descriptors && stream.Route?.Action?.RateLimits is { Length: > 0 } policies)
        {
            (bool, int, int)? last = null;
            foreach (var policy in policies)
            {
                if (!policy.TryFind(stream, descriptors, out var own))
                {
                    continue;
                }
                matched = true;
                var taken = own.TryTake();
                bucket = own;
                if (!taken.Allowed)
                {
                    return taken;
                }
                last = taken;
            }
            if (matched && !limit.AlwaysConsumeDefault)
            {
                return last!.Value;
            }
        }
        var fallback = limit.Bucket!;
        if (!matched)
        {
            bucket = fallback;
        }
        var result = fallback.TryTake();
        if (!result.Allowed)
        {
            bucket = fallback;
        }
        return result;
    }
}
