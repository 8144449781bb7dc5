using Microsoft.IdentityModel.Tokens;

namespace Bowline.Proxy.Filters.Http.JwtAuthn;

/// <summary>
/// A provider's JSON Web Key Set, parsed once per config update by Microsoft.IdentityModel. Verification picks keys as
/// Envoy's JWT library does: a key whose <c>kid</c> differs from the token's is skipped (keys without a kid are
/// tried), a key whose <c>alg</c> differs is skipped, and a key is only ever used for its own family: RSA keys for
/// RS*/PS*, EC keys of the matching curve for ES*, <c>oct</c> keys for HS*. So an RSA public key can never be used
/// as an HMAC secret. The crypto itself is Microsoft.IdentityModel's signature providers.
/// </summary>
/// <remarks>Immutable and thread-safe; signature providers come from the library's cache.</remarks>
internal sealed class JwksKeySet
{
    private readonly Key[] _keys;

    private JwksKeySet(Key[] keys) => _keys = keys;

    public static JwksKeySet Empty { get; } = new([]);

    public int Count => _keys.Length;

    /// <summary>
    /// Parses a JWKS document. Keys the library cannot use (an unknown <c>kty</c>, OKP/EdDSA, a bad modulus) are
    /// left out and reported in <paramref name="problems"/>; a document that does not parse yields no keys.
    /// </summary>
    public static JwksKeySet Parse(string json, List<string> problems)
    {
        JsonWebKeySet set;
        try
        {
            set = new JsonWebKeySet(json);
        }
        catch (ArgumentException e)
        {
            problems.Add($"the JWKS is not valid JSON Web Key Set JSON: {e.Message}");
            return Empty;
        }
        var keys = new List<Key>();
        foreach (var jwk in set.Keys)
        {
            var family = jwk.Kty switch
            {
                JsonWebAlgorithmsKeyTypes.RSA => KeyFamily.Rsa,
                JsonWebAlgorithmsKeyTypes.EllipticCurve => KeyFamily.Ec,
                JsonWebAlgorithmsKeyTypes.Octet => KeyFamily.Hmac,
                _ => (KeyFamily?)null,
            };
            var label = jwk.Kid is { Length: > 0 } kid ? $"key '{kid}'" : $"key {keys.Count + 1}";
            if (family is null)
            {
                problems.Add($"{label}: kty '{jwk.Kty}' is not supported (RSA, EC and oct are)");
                continue;
            }
            if (jwk.Alg is { Length: > 0 } alg && FamilyOf(alg) != family)
            {
                problems.Add($"{label}: alg '{alg}' does not fit kty '{jwk.Kty}'");
                continue;
            }
            if (!JsonWebKeyConverter.TryConvertToSecurityKey(jwk, out var key) || key is null)
            {
                problems.Add($"{label}: the {jwk.Kty} key material could not be read");
                continue;
            }
            if (family == KeyFamily.Hmac && key.KeySize < 256)
            {
                // RFC 7518 §3.2 wants at least the hash size; the library refuses anything under 256 bits.
                problems.Add($"{label}: the oct key has {key.KeySize} bits; HMAC keys need at least 256");
                continue;
            }
            keys.Add(new Key(jwk.Kid ?? "", jwk.Alg ?? "", family.Value, jwk.Crv ?? "", key));
        }
        return new JwksKeySet([.. keys]);
    }

    /// <summary>Checks <paramref name="jwt"/>'s signature against the keys that may sign it.</summary>
    /// <returns><see cref="JwtStatus.Ok"/>, <see cref="JwtStatus.JwtVerificationFail"/>, or <see cref="JwtStatus.JwksKidAlgMismatch"/> when no key fits the token's kid and alg.</returns>
    public JwtStatus Verify(ParsedJwt jwt)
    {
        var family = FamilyOf(jwt.Alg);
        var matched = false;
        foreach (var key in _keys)
        {
            if ((jwt.Kid.Length > 0 && key.Kid.Length > 0 && !string.Equals(key.Kid, jwt.Kid, StringComparison.Ordinal))
                || (key.Alg.Length > 0 && !string.Equals(key.Alg, jwt.Alg, StringComparison.Ordinal)))
            {
                continue;
            }
            matched = true;
            if (key.Family == family && (family != KeyFamily.Ec || CurveFits(key.Crv, jwt.Alg)) && Verifies(key.SecurityKey, jwt))
            {
                return JwtStatus.Ok;
            }
        }
        return matched ? JwtStatus.JwtVerificationFail : JwtStatus.JwksKidAlgMismatch;
    }

    private static bool Verifies(SecurityKey key, ParsedJwt jwt)
    {
        var factory = CryptoProviderFactory.Default;
        if (!factory.IsSupportedAlgorithm(jwt.Alg, key))
        {
            return false;
        }
        SignatureProvider? provider = null;
        try
        {
            provider = factory.CreateForVerifying(key, jwt.Alg);
            return provider.Verify(jwt.SigningInput, jwt.Signature);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or System.Security.Cryptography.CryptographicException or InvalidOperationException)
        {
            // A key the library refuses for this algorithm (an HMAC key shorter than the algorithm needs) verifies nothing.
            return false;
        }
        finally
        {
            if (provider is not null)
            {
                factory.ReleaseSignatureProvider(provider);
            }
        }
    }

    private static KeyFamily? FamilyOf(string alg) => alg.Length < 2 ? null : alg[..2] switch
    {
        "RS" or "PS" => KeyFamily.Rsa,
        "ES" => KeyFamily.Ec,
        "HS" => KeyFamily.Hmac,
        _ => null,
    };

    private static bool CurveFits(string crv, string alg) => (crv, alg) switch
    {
        ("P-256", "ES256") or ("P-384", "ES384") or ("P-521", "ES512") => true,
        _ => false,
    };

    private enum KeyFamily
    {
        Rsa,
        Ec,
        Hmac,
    }

    private sealed record Key(string Kid, string Alg, KeyFamily Family, string Crv, SecurityKey SecurityKey);
}
