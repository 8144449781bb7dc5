using System.Collections.Frozen;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Routing;
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
        XdsFields.Check(proto, where, "stat_prefix", "status", "token_bucket", "filter_enabled", "filter_enforced", "response_headers_to_add", "enable_x_ratelimit_headers",
            "descriptors", "stage", "always_consume_default_token_bucket");
        var bucket = proto.TokenBucket is { } tb ? Bucket(tb, where + " token_bucket") : null;
        if (proto.Stage > 0)
        {
            throw new ProxyConfigException($"{where}: stage {proto.Stage} is not supported; Bowline applies a route's stage-0 rate_limits only");
        }
        Dictionary<string, TokenBucket>? descriptors = null;
        for (var i = 0; i < proto.Descriptors.Count; i++)
        {
            var descriptor = proto.Descriptors[i];
            var dwhere = $"{where} descriptors[{i}]";
            XdsFields.Check(descriptor, dwhere, "entries", "token_bucket");
            if (descriptor.Entries.Count == 0 || descriptor.Entries.Any(e => e.Key.Length == 0 || e.Value.Length == 0))
            {
                throw new ProxyConfigException($"{dwhere}: every descriptor needs entries, each with a key and a value");
            }
            if (descriptor.TokenBucket is null)
            {
                throw new ProxyConfigException($"{dwhere}: token_bucket is required");
            }
            var key = string.Join(DescriptorKey.Separator, descriptor.Entries.Select(e => DescriptorKey.Entry(e.Key, e.Value)));
            if (!(descriptors ??= new(StringComparer.Ordinal)).TryAdd(key, Bucket(descriptor.TokenBucket, dwhere + " token_bucket")))
            {
                throw new ProxyConfigException($"{dwhere}: the same entries are given twice ({string.Join(", ", descriptor.Entries.Select(e => $"{e.Key}={e.Value}"))})");
            }
        }
        if (descriptors is not null && bucket is null)
        {
            // Envoy requires the default bucket whenever descriptors are given.
            throw new ProxyConfigException($"{where}: descriptors need a token_bucket as well, for requests that match none of them");
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
            proto.EnableXRatelimitHeaders == Envoy.Extensions.Common.Ratelimit.V3.XRateLimitHeadersRFCVersion.DraftVersion03)
        {
            Descriptors = descriptors?.ToFrozenDictionary(StringComparer.Ordinal),
            AlwaysConsumeDefault = proto.AlwaysConsumeDefaultTokenBucket ?? true,
        };
    }

    private TokenBucket Bucket(Envoy.Type.V3.TokenBucket tb, string where)
    {
        XdsFields.Check(tb, where, "max_tokens", "tokens_per_fill", "fill_interval");
        var interval = tb.FillInterval?.ToTimeSpan() ?? TimeSpan.Zero;
        if (tb.MaxTokens == 0 || interval < TimeSpan.FromMilliseconds(50))
        {
            throw new ProxyConfigException($"{where}: needs max_tokens above 0 and a fill_interval of at least 50ms");
        }
        if (tb.TokensPerFill == 0)
        {
            // Envoy's validation (tokens_per_fill > 0): a bucket that never refills would refuse everything once spent.
            throw new ProxyConfigException($"{where}: tokens_per_fill must be above 0 (leave it out for 1)");
        }
        return new TokenBucket((int)Math.Min(tb.MaxTokens, int.MaxValue), (int)Math.Min(tb.TokensPerFill ?? 1, int.MaxValue), interval, time);
    }
}

/// <summary>A compiled local rate limit; its buckets live as long as this config (a changed config starts full buckets, as in Envoy).</summary>
internal sealed record LocalRateLimitConfig(LocalRateLimitStats Stats, TokenBucket? Bucket, int Status, Fraction Enabled, Fraction Enforced, (string Name, string Value)[] ResponseHeaders, bool RateLimitHeaders)
{
    /// <summary>A bucket per descriptor (keyed as <see cref="DescriptorKey"/> writes them), which the route's rate_limits select; null when none.</summary>
    public FrozenDictionary<string, TokenBucket>? Descriptors { get; init; }

    /// <summary>Envoy's always_consume_default_token_bucket (default true): whether a request a descriptor matched also takes from the default bucket.</summary>
    public bool AlwaysConsumeDefault { get; init; } = true;
}

/// <summary>Envoy's <c>&lt;stat_prefix&gt;.http_local_rate_limit.*</c> counters.</summary>
internal sealed class LocalRateLimitStats(ProxyStats stats, string prefix)
{
    public Stat Enabled { get; } = stats.Get($"{prefix}.http_local_rate_limit.enabled");
    public Stat Ok { get; } = stats.Get($"{prefix}.http_local_rate_limit.ok");
    public Stat RateLimited { get; } = stats.Get($"{prefix}.http_local_rate_limit.rate_limited");
    public Stat Enforced { get; } = stats.Get($"{prefix}.http_local_rate_limit.enforced");
}
