using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Bowline.ControlPlane.Tests.Infrastructure;

/// <summary>PEM material for gateway credential tests: a root, and leaves for DNS names signed by it.</summary>
internal static class TestCredentials
{
    private static readonly Lazy<X509Certificate2> Root = new(() =>
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=Test Root", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        using var root = request.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(30), DateTimeOffset.UnixEpoch.AddYears(80));
        return X509CertificateLoader.LoadPkcs12(root.Export(X509ContentType.Pkcs12), null);
    });

    public static string RootPem => Root.Value.ExportCertificatePem();

    /// <summary>A leaf for <paramref name="dnsName"/> valid from 2000 to 2050 (or the given window) and its PKCS#8 key.</summary>
    public static (string Certificate, string Key) Leaf(string dnsName, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={dnsName}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(dnsName);
        request.CertificateExtensions.Add(san.Build());
        var serial = new byte[16];
        serial[0] = 0x42;
        serial[^1] = (byte)dnsName.Length;
        using var leaf = request.Create(Root.Value, notBefore ?? DateTimeOffset.UnixEpoch.AddYears(30), notAfter ?? DateTimeOffset.UnixEpoch.AddYears(80), serial);
        return (leaf.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    public static string Base64(string text) => Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(text));

    /// <summary>A <c>kubernetes.io/tls</c> Secret in <paramref name="ns"/>, with <c>ca.crt</c> when <paramref name="ca"/> is given.</summary>
    public static string TlsSecret(string name, string ns, (string Certificate, string Key) leaf, string? ca = null) =>
        $"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {ns}}}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: {Base64(leaf.Certificate)}\n  tls.key: {Base64(leaf.Key)}\n"
        + (ca is null ? "" : $"  ca.crt: {Base64(ca)}\n");
}
