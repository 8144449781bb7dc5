using System.Security.Cryptography.X509Certificates;

namespace Bowline.Ca;

/// <summary>
/// A TLS server certificate the CA issued for the control plane itself (Istio's istiod DNS certificate): the leaf
/// with its private key, and the intermediates to send after it (none when the root signs).
/// </summary>
/// <remarks>The key was generated in this process and never left it. The caller owns and disposes the certificates.</remarks>
public sealed class ServingCertificate(X509Certificate2 certificate, X509Certificate2Collection intermediates) : IDisposable
{
    /// <summary>The leaf, with its private key.</summary>
    public X509Certificate2 Certificate { get; } = certificate;

    /// <summary>What sits between the leaf and the root, leaf side first; empty when the root signs.</summary>
    public X509Certificate2Collection Intermediates { get; } = intermediates;

    public DateTimeOffset NotBefore => new(Certificate.NotBefore.ToUniversalTime());

    public DateTimeOffset NotAfter => new(Certificate.NotAfter.ToUniversalTime());

    public void Dispose()
    {
        Certificate.Dispose();
        foreach (var intermediate in Intermediates)
        {
            intermediate.Dispose();
        }
    }
}
