using Bowline.Proxy.Routing;

namespace Bowline.Proxy.Filters.Http.JwtAuthn;

/// <summary>
/// A compiled <c>JwtProvider</c>: who issues its tokens, which audiences and subjects it accepts, its keys (parsed
/// once, here), where its tokens are found and what a verified token leaves behind (headers, metadata).
/// </summary>
/// <param name="ClockSkewSeconds">Leeway for <c>exp</c> and <c>nbf</c>; Envoy's default is 60.</param>
/// <param name="MaxLifetime">From <c>max_lifetime</c>, or <see cref="TimeSpan.MaxValue"/> for <c>require_expiration</c>; null when neither is set.</param>
internal sealed record JwtProviderConfig(
    string Name,
    string Issuer,
    IReadOnlyList<string> Audiences,
    JwksKeySet Keys,
    IReadOnlyList<(string Name, string Prefix)> FromHeaders,
    IReadOnlyList<string> FromParams,
    IReadOnlyList<string> FromCookies,
    bool Forward,
    string? ForwardPayloadHeader,
    bool PadForwardPayloadHeader,
    string? PayloadInMetadata,
    string? HeaderInMetadata,
    IReadOnlyList<string> SpaceDelimitedClaims,
    IReadOnlyList<(string Header, string Claim)> ClaimToHeaders,
    long ClockSkewSeconds,
    StringMatcher? Subjects,
    TimeSpan? MaxLifetime,
    bool ClearRouteCache)
{
    /// <summary>
    /// Envoy's audience check: any of the token's audiences in the list passes, an empty list checks nothing, and
    /// both sides are compared without an <c>http://</c> or <c>https://</c> scheme and a trailing slash.
    /// </summary>
    public static bool AudiencesAllowed(IReadOnlySet<string> allowed, IReadOnlyList<string> tokenAudiences)
    {
        if (allowed.Count == 0)
        {
            return true;
        }
        foreach (var audience in tokenAudiences)
        {
            if (allowed.Contains(SanitizeAudience(audience)))
            {
                return true;
            }
        }
        return false;
    }

    public static string SanitizeAudience(string audience)
    {
        var span = audience.AsSpan();
        if (span.StartsWith("http://", StringComparison.Ordinal))
        {
            span = span["http://".Length..];
        }
        else if (span.StartsWith("https://", StringComparison.Ordinal))
        {
            span = span["https://".Length..];
        }
        if (span.EndsWith("/"))
        {
            span = span[..^1];
        }
        return span.Length == audience.Length ? audience : span.ToString();
    }

    /// <summary>The provider's own audiences, sanitized once.</summary>
    public IReadOnlySet<string> AllowedAudiences { get; } = Audiences.Select(SanitizeAudience).ToHashSet(StringComparer.Ordinal);
}
