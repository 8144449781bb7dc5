using Bowline.ControlPlane.Config;

namespace Bowline.ControlPlane.Security;

/// <summary>
/// A JWKS the control plane fetches: from <see cref="JwksUri"/>, or, when a rule gives only an issuer, from the
/// <c>jwks_uri</c> of the issuer's OpenID discovery document (<c>&lt;issuer&gt;/.well-known/openid-configuration</c>).
/// </summary>
/// <param name="Timeout">How long one fetch (discovery and JWKS each) may take: the longest <c>timeout</c> of the rules that use it.</param>
internal sealed record JwksSource(string Issuer, string? JwksUri, TimeSpan Timeout)
{
    /// <summary>The cache key: the URI, or the issuer to discover from. Two rules with the same URI share one fetch.</summary>
    public string Key => JwksUri ?? DiscoveryKey(Issuer);

    public static string KeyOf(JwtRule rule) => rule.JwksUri ?? DiscoveryKey(rule.Issuer);

    /// <summary>Where OpenID Connect Discovery 1.0 says an issuer publishes its configuration.</summary>
    public string DiscoveryUri => $"{Issuer.TrimEnd('/')}/.well-known/openid-configuration";

    private static string DiscoveryKey(string issuer) => $"{issuer.TrimEnd('/')}/.well-known/openid-configuration";
}
