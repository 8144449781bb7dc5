using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>
/// A Kubernetes <c>v1 Secret</c> holding a Gateway credential: <c>data</c> (base64) and <c>stringData</c> (text, which
/// wins, as the API server merges them), read with Istio's keys (pilot/pkg/credentials/kube ExtractCertInfo,
/// ExtractRoot). Validated here, so a bad credential is a diagnostic naming the key instead of a failed handshake: the
/// PEM parses, the key belongs to the leaf, and a leaf outside its validity period is a warning.
/// </summary>
internal static class SecretParser
{
    private const string TlsType = "kubernetes.io/tls";
    private const string OpaqueType = "Opaque";

    /// <summary>Reads the Secret's top level (it has no <c>spec</c>); null when it is not a TLS credential or is invalid.</summary>
    public static MeshResource? Parse(ResourceMeta meta, FieldReader secret, TimeProvider time)
    {
        var type = secret.String("type") ?? OpaqueType;
        var data = secret.StringMap("data");
        var text = secret.StringMap("stringData");
        secret.Bool("immutable");
        if (type is not (TlsType or OpaqueType))
        {
            secret.Warning("type", $"a Secret of type {type} is not used by Bowline (it serves {TlsType} and {OpaqueType} Secrets as gateway credentials); the object is ignored");
            return null;
        }
        var before = secret.ErrorCount;
        var values = new Dictionary<string, (string Value, string Field)>(StringComparer.Ordinal);
        foreach (var (key, value) in data)
        {
            try
            {
                values[key] = (System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(value)), $"data.{key}");
            }
            catch (FormatException)
            {
                secret.Error("data", $"data.{key} is not base64; put PEM text under stringData instead, or encode it with base64 -w0");
            }
        }
        foreach (var (key, value) in text)
        {
            values[key] = (value, $"stringData.{key}");
        }
        if (secret.ErrorCount != before)
        {
            return null;
        }

        // Istio's order: cert/key first, then tls.crt/tls.key; cacert, then ca.crt.
        var (chain, privateKey) = Pair(values, "cert", "key") ?? Pair(values, "tls.crt", "tls.key") ?? (null, null);
        var ca = Value(values, "cacert") ?? Value(values, "ca.crt");
        if (type == TlsType && (chain is null || privateKey is null))
        {
            secret.Error("data", $"a {TlsType} Secret needs non-empty tls.crt and tls.key");
            return null;
        }
        if (chain is null && ca is null)
        {
            var found = string.Join(", ", values.Keys.Order(StringComparer.Ordinal));
            secret.Warning("data", $"the Secret holds neither a certificate (tls.crt and tls.key, or cert and key) nor a CA bundle (ca.crt or cacert), only [{found}]; it cannot be a gateway credential and is ignored");
            return null;
        }
        foreach (var crl in new[] { "ca.crl", "crl" }.Where(values.ContainsKey))
        {
            secret.Warning("data", $"{values[crl].Field}: certificate revocation lists are not supported by Bowline yet; revoked client certificates are accepted");
        }
        if (chain is not null)
        {
            ValidateCertificate(secret, chain.Value, privateKey!.Value, time);
        }
        if (ca is not null)
        {
            ValidateBundle(secret, ca.Value);
        }
        if (secret.ErrorCount != before)
        {
            return null;
        }
        return new CredentialSecret(meta, type, chain?.Value, privateKey?.Value, ca?.Value);
    }

    private static ((string Value, string Field)?, (string Value, string Field)?)? Pair(Dictionary<string, (string Value, string Field)> values, string cert, string key) =>
        Value(values, cert) is { } c && Value(values, key) is { } k ? (c, k) : null;

    private static (string Value, string Field)? Value(Dictionary<string, (string Value, string Field)> values, string key) =>
        values.TryGetValue(key, out var value) && value.Value.Trim().Length > 0 ? value : null;

    private static void ValidateCertificate(FieldReader secret, (string Value, string Field) chain, (string Value, string Field) key, TimeProvider time)
    {
        var certificates = new X509Certificate2Collection();
        try
        {
            certificates.ImportFromPem(chain.Value);
        }
        catch (CryptographicException e)
        {
            secret.Error(Top(chain.Field), $"{chain.Field} is not a PEM certificate chain ({e.Message}); give the leaf first, then its intermediates, each as -----BEGIN CERTIFICATE-----");
            return;
        }
        if (certificates.Count == 0)
        {
            secret.Error(Top(chain.Field), $"{chain.Field} holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
            return;
        }
        try
        {
            using var leaf = X509Certificate2.CreateFromPem(chain.Value, key.Value);
            var now = time.GetUtcNow();
            if (leaf.NotAfter.ToUniversalTime() < now.UtcDateTime)
            {
                secret.Warning(Top(chain.Field), $"{chain.Field}: the certificate {leaf.Subject} expired at {leaf.NotAfter.ToUniversalTime():u}; clients will refuse it until the Secret holds a current one");
            }
            else if (leaf.NotBefore.ToUniversalTime() > now.UtcDateTime)
            {
                secret.Warning(Top(chain.Field), $"{chain.Field}: the certificate {leaf.Subject} is not valid before {leaf.NotBefore.ToUniversalTime():u}; clients will refuse it until then");
            }
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            // ArgumentException: a key that loads but belongs to another certificate.
            secret.Error(Top(key.Field), $"{key.Field} does not load as the private key of the certificate in {chain.Field} ({e.Message}); give the PEM key (PKCS#8, EC or RSA) that belongs to the leaf");
        }
        finally
        {
            foreach (var certificate in certificates)
            {
                certificate.Dispose();
            }
        }
    }

    private static void ValidateBundle(FieldReader secret, (string Value, string Field) ca)
    {
        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPem(ca.Value);
            if (roots.Count == 0)
            {
                secret.Error(Top(ca.Field), $"{ca.Field} holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
            }
        }
        catch (CryptographicException e)
        {
            secret.Error(Top(ca.Field), $"{ca.Field} is not a PEM CA bundle ({e.Message})");
        }
        finally
        {
            foreach (var root in roots)
            {
                root.Dispose();
            }
        }
    }

    /// <summary>The Secret's top-level field a value came from, for the diagnostic's field.</summary>
    private static string Top(string field) => field.Split('.', 2)[0];
}
