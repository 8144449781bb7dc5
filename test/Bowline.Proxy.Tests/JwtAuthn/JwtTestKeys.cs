using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Bowline.Proxy.Tests.JwtAuthn;

/// <summary>Real keys made for the test run (RSA, ECDSA on three curves, an HMAC secret) and tokens signed with them by Microsoft.IdentityModel.</summary>
internal sealed class JwtTestKeys : IDisposable
{
    public RSA Rsa { get; } = RSA.Create(2048);

    public ECDsa P256 { get; } = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public ECDsa P384 { get; } = ECDsa.Create(ECCurve.NamedCurves.nistP384);

    public ECDsa P521 { get; } = ECDsa.Create(ECCurve.NamedCurves.nistP521);

    public byte[] Secret { get; } = RandomNumberGenerator.GetBytes(64);

    public RSA OtherRsa { get; } = RSA.Create(2048);

    /// <summary>A JWKS with the RSA key as <c>rsa-1</c>, the EC keys as <c>ec-256</c>/<c>ec-384</c>/<c>ec-521</c> and the secret as <c>hmac-1</c>.</summary>
    public string Jwks() => JwksOf(RsaJwk(Rsa, "rsa-1"), EcJwk(P256, "ec-256", "P-256"), EcJwk(P384, "ec-384", "P-384"), EcJwk(P521, "ec-521", "P-521"), OctJwk(Secret, "hmac-1"));

    public static string JwksOf(params Dictionary<string, string>[] keys) => JsonSerializer.Serialize(new Dictionary<string, Dictionary<string, string>[]> { ["keys"] = keys }, JwtTestJson.Default.DictionaryStringDictionaryStringStringArray);

    public static Dictionary<string, string> RsaJwk(RSA rsa, string? kid, string? alg = null)
    {
        var p = rsa.ExportParameters(false);
        return Jwk(kid, alg, ("kty", "RSA"), ("n", B64(p.Modulus!)), ("e", B64(p.Exponent!)));
    }

    public static Dictionary<string, string> EcJwk(ECDsa ec, string? kid, string crv)
    {
        var p = ec.ExportParameters(false);
        return Jwk(kid, null, ("kty", "EC"), ("crv", crv), ("x", B64(p.Q.X!)), ("y", B64(p.Q.Y!)));
    }

    public static Dictionary<string, string> OctJwk(byte[] secret, string? kid) => Jwk(kid, null, ("kty", "oct"), ("k", B64(secret)));

    private static Dictionary<string, string> Jwk(string? kid, string? alg, params (string, string)[] fields)
    {
        var jwk = fields.ToDictionary(f => f.Item1, f => f.Item2);
        if (kid is not null)
        {
            jwk["kid"] = kid;
        }
        if (alg is not null)
        {
            jwk["alg"] = alg;
        }
        return jwk;
    }

    /// <summary>The signing key for <paramref name="alg"/> with the kid the JWKS gives it.</summary>
    public SecurityKey KeyFor(string alg, string? kid = null) => alg[..2] switch
    {
        "RS" or "PS" => new RsaSecurityKey(Rsa) { KeyId = kid ?? "rsa-1" },
        "HS" => new SymmetricSecurityKey(Secret) { KeyId = kid ?? "hmac-1" },
        _ => alg switch
        {
            "ES256" => new ECDsaSecurityKey(P256) { KeyId = kid ?? "ec-256" },
            "ES384" => new ECDsaSecurityKey(P384) { KeyId = kid ?? "ec-384" },
            _ => new ECDsaSecurityKey(P521) { KeyId = kid ?? "ec-521" },
        },
    };

    /// <summary>A token signed by the library.</summary>
    public static string Sign(string payloadJson, SecurityKey key, string alg)
    {
        var handler = new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false };
        return handler.CreateToken(payloadJson, new SigningCredentials(key, alg));
    }

    public string Sign(string payloadJson, string alg = "RS256", string? kid = null) => Sign(payloadJson, KeyFor(alg, kid), alg);

    /// <summary>A token with a hand-made header, signed with HMAC-SHA256 over any secret (the algorithm-confusion attack), or unsigned.</summary>
    public static string Craft(string headerJson, string payloadJson, byte[]? hmacSecret)
    {
        var input = B64(Encoding.UTF8.GetBytes(headerJson)) + "." + B64(Encoding.UTF8.GetBytes(payloadJson));
        var signature = hmacSecret is null ? "" : B64(HMACSHA256.HashData(hmacSecret, Encoding.ASCII.GetBytes(input)));
        return input + "." + signature;
    }

    public static string B64(byte[] bytes) => Base64Url.EncodeToString(bytes);

    public void Dispose()
    {
        Rsa.Dispose();
        OtherRsa.Dispose();
        P256.Dispose();
        P384.Dispose();
        P521.Dispose();
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, Dictionary<string, string>[]>))]
internal sealed partial class JwtTestJson : System.Text.Json.Serialization.JsonSerializerContext;
