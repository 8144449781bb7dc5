using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Bowline.Ca.Internal;

/// <summary>
/// What leaves are signed with: the signing certificate with its key, the certificates between it and the root, and
/// the window every leaf must fit in (an issuer refuses to sign past its own validity). Built once per root change.
/// </summary>
internal sealed class Signer
{
    public Signer(X509Certificate2 certificate, IReadOnlyList<X509Certificate2> chain)
    {
        // chain: the signing certificate first, the root last (one element when the signing certificate is the root).
        Certificate = certificate;
        Root = chain[^1];
        IsRoot = chain.Count == 1;
        IntermediatePems = chain.Take(chain.Count - 1).Select(c => c.ExportCertificatePem()).ToList();
        // Public halves only: what a peer's chain may be built through when it presents its leaf alone.
        Intermediates = chain.Take(chain.Count - 1).Select(c => X509CertificateLoader.LoadCertificate(c.RawData)).ToList();
        NotBefore = chain.Max(c => new DateTimeOffset(c.NotBefore.ToUniversalTime()));
        NotAfter = chain.Min(c => new DateTimeOffset(c.NotAfter.ToUniversalTime()));
        RootThumbprint = TrustBundle.Thumbprint(Root);
        AuthorityKeyIdentifier = X509AuthorityKeyIdentifierExtension.CreateFromCertificate(certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false);
        Hash = certificate.GetECDsaPublicKey() is { } ec ? HashFor(ec) : HashAlgorithmName.SHA256;
        // A generator, not the issuer certificate, signs: .NET's issuer-certificate overload refuses to sign a key
        // of another algorithm than the issuer's (an RSA workload key under an ECDSA root).
        Generator = certificate.GetECDsaPrivateKey() is { } ecKey
            ? X509SignatureGenerator.CreateForECDsa(ecKey)
            : X509SignatureGenerator.CreateForRSA(certificate.GetRSAPrivateKey() ?? throw new InvalidOperationException($"{certificate.Subject}: only ECDSA and RSA CA keys are supported"), RSASignaturePadding.Pkcs1);
    }

    /// <summary>The issuing certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    public X509Certificate2 Root { get; }

    public string RootThumbprint { get; }

    /// <summary>True when leaves are signed by the root itself (generated or operator-supplied root), false under an intermediate.</summary>
    public bool IsRoot { get; }

    /// <summary>The signing certificate and any intermediates above it, as PEM, leaf-side first; empty when signing with the root.</summary>
    public IReadOnlyList<string> IntermediatePems { get; }

    /// <summary>The same certificates as <see cref="IntermediatePems"/>, without private keys.</summary>
    public IReadOnlyList<X509Certificate2> Intermediates { get; }

    public DateTimeOffset NotBefore { get; }

    public DateTimeOffset NotAfter { get; }

    public X509AuthorityKeyIdentifierExtension AuthorityKeyIdentifier { get; }

    public HashAlgorithmName Hash { get; }

    /// <summary>Signs with the signing certificate's private key. Lives as long as the signer (the key with it).</summary>
    public X509SignatureGenerator Generator { get; }

    private static HashAlgorithmName HashFor(ECDsa key)
    {
        using (key)
        {
            return key.KeySize switch
            {
                > 384 => HashAlgorithmName.SHA512,
                > 256 => HashAlgorithmName.SHA384,
                _ => HashAlgorithmName.SHA256,
            };
        }
    }
}
