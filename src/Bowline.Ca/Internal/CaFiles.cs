using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Bowline.Ca.Internal;

/// <summary>
/// The CA directory in Istio's plugin-CA layout, so an operator's <c>cacerts</c> files work unchanged:
/// <c>ca-cert.pem</c> signs, <c>ca-key.pem</c> is its key, <c>cert-chain.pem</c> is the signing certificate's chain
/// (intermediates; a root may be in it), <c>root-cert.pem</c> holds every trusted root, the signing chain's first.
/// </summary>
internal static class CaFiles
{
    public const string CaCert = "ca-cert.pem";
    public const string CaKey = "ca-key.pem";
    public const string CertChain = "cert-chain.pem";
    public const string RootCert = "root-cert.pem";

    /// <summary>The signing certificate with its key, its verified chain (signing certificate first, root last), and all trusted roots (that root first).</summary>
    public sealed record Contents(X509Certificate2 Signing, IReadOnlyList<X509Certificate2> Chain, IReadOnlyList<X509Certificate2> Roots);

    /// <summary>True when the directory holds none of the CA files: the first start, when a root is generated.</summary>
    public static bool IsEmpty(string directory) =>
        !new[] { CaCert, CaKey, CertChain, RootCert }.Any(f => File.Exists(Path.Combine(directory, f)));

    public static Contents Load(string directory, DateTimeOffset now)
    {
        var certPem = Read(directory, CaCert);
        var keyPem = Read(directory, CaKey);
        var rootPem = Read(directory, RootCert);
        var chainPath = Path.Combine(directory, CertChain);
        var chainPem = File.Exists(chainPath) ? File.ReadAllText(chainPath) : "";

        X509Certificate2 signing;
        try
        {
            signing = X509Certificate2.CreateFromPem(certPem, keyPem);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            throw Bad(directory, $"{CaCert} and {CaKey} are not a certificate and its matching private key ({e.Message}); put the signing certificate and its key (PKCS#8, EC or RSA PEM) there");
        }
        if (signing.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true })
        {
            throw Bad(directory, $"{CaCert} ({signing.Subject}) is not a CA certificate (basicConstraints CA:TRUE); supply a root or intermediate CA certificate");
        }
        if (signing.Extensions.OfType<X509KeyUsageExtension>().FirstOrDefault() is { } usage && !usage.KeyUsages.HasFlag(X509KeyUsageFlags.KeyCertSign))
        {
            throw Bad(directory, $"{CaCert} ({signing.Subject}) may not sign certificates (its keyUsage lacks keyCertSign)");
        }

        var roots = Import(rootPem);
        if (roots.Count == 0)
        {
            throw Bad(directory, $"{RootCert} holds no PEM certificate; put the root certificate(s) workloads should trust there");
        }
        foreach (var root in roots)
        {
            if (!root.SubjectName.RawData.AsSpan().SequenceEqual(root.IssuerName.RawData))
            {
                throw Bad(directory, $"{RootCert} holds {root.Subject}, issued by {root.Issuer}: only self-signed roots belong there (intermediates go in {CertChain})");
            }
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots.ToArray());
        chain.ChainPolicy.ExtraStore.AddRange(Import(chainPem).ToArray());
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = now.UtcDateTime;
        if (!chain.Build(signing))
        {
            var problems = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Distinct());
            throw Bad(directory, $"{CaCert} ({signing.Subject}) does not chain to a root in {RootCert} through {CertChain} at {now:u}: {problems}. Put the intermediates in {CertChain} and the root in {RootCert}, and check that none has expired");
        }
        // Copies: the chain's own certificates go with it when it is disposed.
        var path = chain.ChainElements.Select(e => X509CertificateLoader.LoadCertificate(e.Certificate.RawData)).ToList();
        var signingRoot = path[^1];
        var ordered = roots.Where(r => r.RawDataMemory.Span.SequenceEqual(signingRoot.RawDataMemory.Span))
            .Concat(roots.Where(r => !r.RawDataMemory.Span.SequenceEqual(signingRoot.RawDataMemory.Span)))
            .ToList();
        return new Contents(signing, path, ordered);
    }

    /// <summary>A new self-signed root, as PEM certificate and PKCS#8 key. ECDSA P-256: small, fast, and what Istio's agents use for leaves.</summary>
    public static (string CertificatePem, string KeyPem) GenerateRoot(string trustDomain, DateTimeOffset now, TimeSpan ttl, TimeSpan backdate)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var name = new X500DistinguishedNameBuilder();
        name.AddOrganizationName(trustDomain);
        // A distinct name per root, so roots being rotated are told apart in logs and by chain builders.
        name.AddCommonName($"Bowline root CA {Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}");
        var request = new CertificateRequest(name.Build(), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        using var root = request.CreateSelfSigned(now - backdate, now + ttl);
        return (root.ExportCertificatePem() + "\n", key.ExportPkcs8PrivateKeyPem() + "\n");
    }

    /// <summary>Writes a generated root as the signing certificate. The bundle goes first: a crash part-way leaves a superset of trust, never a key without its roots.</summary>
    public static void SaveSigningRoot(string directory, string certificatePem, string keyPem, IEnumerable<X509Certificate2> otherRoots)
    {
        SaveRoots(directory, [certificatePem, .. otherRoots.Select(r => r.ExportCertificatePem() + "\n")]);
        SecureFiles.WritePrivate(Path.Combine(directory, CaKey), keyPem);
        SecureFiles.WritePublic(Path.Combine(directory, CaCert), certificatePem);
        SecureFiles.WritePublic(Path.Combine(directory, CertChain), certificatePem);
    }

    /// <summary>The root a staged rotation will sign under once every workload trusts it (<see cref="CertificateAuthority.BeginRootRotation"/>).</summary>
    public const string NextCaCert = "next-ca-cert.pem";
    public const string NextCaKey = "next-ca-key.pem";

    public static void SavePending(string directory, string certificatePem, string keyPem)
    {
        SecureFiles.WritePrivate(Path.Combine(directory, NextCaKey), keyPem);
        SecureFiles.WritePublic(Path.Combine(directory, NextCaCert), certificatePem);
    }

    /// <summary>The staged root's certificate and key PEM, or null when no rotation is under way.</summary>
    public static (string CertificatePem, string KeyPem)? LoadPending(string directory)
    {
        var cert = Path.Combine(directory, NextCaCert);
        var key = Path.Combine(directory, NextCaKey);
        return File.Exists(cert) && File.Exists(key) ? (File.ReadAllText(cert), File.ReadAllText(key)) : null;
    }

    public static void ClearPending(string directory)
    {
        File.Delete(Path.Combine(directory, NextCaCert));
        File.Delete(Path.Combine(directory, NextCaKey));
    }

    public static void SaveRoots(string directory, IEnumerable<string> rootPems) =>
        SecureFiles.WritePublic(Path.Combine(directory, RootCert), string.Concat(rootPems));

    private static List<X509Certificate2> Import(string pem)
    {
        var collection = new X509Certificate2Collection();
        if (pem.Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal))
        {
            collection.ImportFromPem(pem);
        }
        return [.. collection];
    }

    private static string Read(string directory, string file)
    {
        var path = Path.Combine(directory, file);
        return File.Exists(path)
            ? File.ReadAllText(path)
            : throw Bad(directory, $"{file} is missing. Either leave the directory without any of {CaCert}, {CaKey}, {CertChain}, {RootCert} (a root is generated), or supply {CaCert}, {CaKey} and {RootCert} (and {CertChain} under an intermediate), as for Istio's plugin CA");
    }

    private static InvalidOperationException Bad(string directory, string message) => new($"CA directory {directory}: {message}");
}
