using Bowline.Proxy.Configuration;
using Bowline.Proxy.Stats;
using Google.Protobuf.WellKnownTypes;
using Proto = Envoy.Extensions.Filters.Http.LocalRatelimit.V3.LocalRateLimit;

namespace Bowline.Proxy.Filters.Http.LocalRateLimit;

/// <summary>
/// <c>envoy.filters.http.local_ratelimit</c>: a token bucket per filter (per listener chain) or per route (its
/// typed_per_filter_config). As in Envoy, <c>filter_enabled</c> and <c>filter_enforced</c> default to 0%: a bucket
/// limits nothing until both are set.
/// </summary>
internal sealed class LocalRateLimitFilterFactory(ProxyStats stats, TimeProvider time) : IHttpFilterFactory
{
    public const string TypeUrl = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";

    public string ConfigTypeUrl => TypeUrl;

    public string? PerRouteTypeUrl => TypeUrl;

    public IHttpFilter Create(string name, Any config, FilterFactoryContext context, string where) =>
        new LocalRateLimitFilter(name, Compile(config, where), context);

    public object CompilePerRoute(Any config, string where) => Compile(config, where);

    private LocalRateLimitConfig Compile(Any any, string where)
    {
        var proto = any.Unpack<Proto>();
        XdsFields.Check(proto, where, "stat_prefix", "status", "token_bucket", "filter_enabled", "filter_enforced", "response_headers_to_add", "enable_x_ratelimit_headers");
        TokenBucket? bucket = null;
        if (proto.TokenBucket is { } tb)
        {
            XdsFields.Check(tb, where + " token_bucket", "max_tokens", "tokens_per_fill", "fill_interval");
            var interval = tb.FillInterval?.ToTimeSpan() ?? TimeSpan.Zero;
            if (tb.MaxTokens == 0 || interval < TimeSpan.FromMilliseconds(50))
            {
                throw new ProxyConfigException($"{where}: token_bucket needs max_tokens above 0 and a fill_interval of at least 50ms");
            }
            bucket = new TokenBucket((int)Math.Min(tb.MaxTokens, int.MaxValue), (int)Math.Min(tb.TokensPerFill ?? 1, int.MaxValue), interval, time);
        }
        var status = proto.Status?.Code is { } code and not Envoy.Type.V3.StatusCode.Empty ? (int)code : 429;
        if (proto.StatPrefix.Length == 0)
        {
            throw new ProxyConfigException($"{where}: stat_prefix is required");
        }
        var headers = proto.ResponseHeadersToAdd.Select(h => (h.Header.Key, h.Header.Value)).ToArray();
        return new LocalRateLimitConfig(
            new LocalRateLimitStats(stats, proto.StatPrefix),
            bucket,
            status,
            Fraction.From(proto.FilterEnabled, Fraction.None, where + " filter_enabled"),
            Fraction.From(proto.FilterEnforced, Fraction.None, where + " filter_enforced"),
            headers,
            proto.EnableXRatelimitHeaders == Envoy.Extensions.Common.Ratelimit.V3.XRateLimitHeadersRFCVersion.DraftVersion03);
    }
}

/// <summary>A compiled local rate limit; its bucket lives as long as this config (a changed config starts a full bucket, as in Envoy).</summary>
internal sealed record LocalRateLimitConfig(LocalRateLimitStats Stats, TokenBucket? Bucket, int Status, Fraction Enabled, Fraction Enforced, (string Name, string Value)[] ResponseHeaders, bool RateLimitHeaders);

/// <summary>Envoy's <c>&lt;stat_prefix&gt;.http_local_rate_limit.*</c> counters.</summary>
internal sealed class LocalRateLimitStats(ProxyStats stats, string prefix)
{
    public Stat Enabled { get; } = stats.Get($"{prefix}.http_local_rate_limit.enabled");
    public Stat Ok { get; } = stats.Get($"{prefix}.http_local_rate_limit.ok");
    public Stat RateLimited { get; } = stats.Get($"{prefix}.http_local_rate_limit.rate_limited");
    public Stat Enforced { get; } = stats.Get($"{prefix}.http_local_rate_limit.enforced");
}
