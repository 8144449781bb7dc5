using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Bowline.Proxy.Tests.Infrastructure;

/// <summary>Certificates for TLS tests, made with the platform's own X.509 APIs: a root, and leaves shaped right or wrong on purpose.</summary>
internal static class TestPki
{
    public static X509Certificate2 Root(string name = "Bowline Test Root")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"O=cluster.local, CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
    }

    /// <summary>A leaf signed by <paramref name="issuer"/>, with the given URI SANs and, unless told otherwise, an SVID's extensions.</summary>
    public static X509Certificate2 Leaf(X509Certificate2 issuer, string[] uris, bool ca = false, bool clientAuth = true, bool serverAuth = true, TimeSpan? validFor = null, string[]? dnsNames = null)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("O=cluster.local", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var uri in uris)
        {
            san.AddUri(new Uri(uri));
        }
        foreach (var dns in dnsNames ?? [])
        {
            san.AddDnsName(dns);
        }
        request.CertificateExtensions.Add(san.Build(critical: true));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(ca, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment | (ca ? X509KeyUsageFlags.KeyCertSign : 0), true));
        var usages = new OidCollection();
        if (serverAuth)
        {
            usages.Add(new Oid("1.3.6.1.5.5.7.3.1"));
        }
        if (clientAuth)
        {
            usages.Add(new Oid("1.3.6.1.5.5.7.3.2"));
        }
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(usages, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false));
        var notBefore = DateTimeOffset.UtcNow.AddMinutes(-5);
        var notAfter = validFor is { } v ? notBefore.Add(v) : DateTimeOffset.UtcNow.AddHours(24);
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using var signed = request.Create(issuer, notBefore, notAfter, serial);
        return signed.CopyWithPrivateKey(key);
    }

    public static string Spiffe(string serviceAccount, string ns = "default", string trustDomain = "cluster.local") => $"spiffe://{trustDomain}/ns/{ns}/sa/{serviceAccount}";
}
