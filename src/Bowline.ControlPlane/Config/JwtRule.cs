namespace Bowline.ControlPlane.Config;

/// <summary>
/// One <c>jwtRules</c> entry of a RequestAuthentication: which issuer's tokens are accepted, where they are looked for,
/// how their signature is checked, and what of a valid token is passed to the app. Field names are Istio's.
/// </summary>
/// <param name="Issuer"><c>issuer</c>, the <c>iss</c> a token must carry; empty only when <paramref name="JwksUri"/> is given (then any issuer verified by those keys).</param>
/// <param name="Audiences"><c>audiences</c>: a token must carry one of them in <c>aud</c>; empty accepts any audience.</param>
/// <param name="JwksUri"><c>jwksUri</c>: where the control plane fetches the keys (it inlines them; the proxy never fetches).</param>
/// <param name="Jwks"><c>jwks</c>: the keys inline, as a JWKS JSON document.</param>
/// <param name="FromHeaders"><c>fromHeaders</c>; empty means Istio's default, <c>Authorization: Bearer &lt;token&gt;</c>.</param>
/// <param name="FromParams"><c>fromParams</c>; with no header or cookie location given, the <c>access_token</c> query parameter is also read.</param>
/// <param name="FromCookies"><c>fromCookies</c>: cookie names a token is read from.</param>
/// <param name="ForwardOriginalToken"><c>forwardOriginalToken</c>: keep the token in the request sent to the app (it is removed otherwise).</param>
/// <param name="OutputPayloadToHeader"><c>outputPayloadToHeader</c>: a header that carries the verified payload (base64url JSON) to the app.</param>
/// <param name="OutputClaimToHeaders"><c>outputClaimToHeaders</c>: claims copied into request headers.</param>
/// <param name="Timeout"><c>timeout</c>: how long the control plane waits for the JWKS (and OIDC discovery) to be fetched; 5 s when absent.</param>
/// <param name="SpaceDelimitedClaims"><c>spaceDelimitedClaims</c>: claims split on spaces in the payload AuthorizationPolicy reads, besides <c>scope</c> and <c>permission</c>.</param>
internal sealed record JwtRule(
    string Issuer,
    IReadOnlyList<string> Audiences,
    string? JwksUri,
    string? Jwks,
    IReadOnlyList<JwtHeaderLocation> FromHeaders,
    IReadOnlyList<string> FromParams,
    IReadOnlyList<string> FromCookies,
    bool ForwardOriginalToken,
    string? OutputPayloadToHeader,
    IReadOnlyList<JwtClaimToHeader> OutputClaimToHeaders,
    TimeSpan? Timeout,
    IReadOnlyList<string> SpaceDelimitedClaims)
{
    /// <summary>Istio's default for <see cref="Timeout"/>.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

    public TimeSpan EffectiveTimeout => Timeout ?? DefaultTimeout;

    /// <summary>Whether the control plane must fetch the keys: from <see cref="JwksUri"/>, or by OIDC discovery from the issuer when neither is given.</summary>
    public bool NeedsFetch => Jwks is null;
}

/// <summary>A <c>fromHeaders</c> entry: the header a token is read from, and the prefix (<c>"Bearer "</c>) stripped before it.</summary>
internal sealed record JwtHeaderLocation(string Name, string Prefix);

/// <summary>An <c>outputClaimToHeaders</c> entry: the request header set to the value of <paramref name="Claim"/>.</summary>
internal sealed record JwtClaimToHeader(string Header, string Claim);
