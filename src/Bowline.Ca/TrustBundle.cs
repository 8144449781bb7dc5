using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Extensions.Primitives;

namespace Bowline.Ca;

/// <summary>
/// The roots a workload must trust: the one current leaves chain to first, then roots being rotated out. Immutable;
/// the CA swaps in a new bundle on rotation or retirement and cancels <see cref="ChangeToken"/> of the old one, so
/// the control plane can push SDS <c>ROOTCA</c> without polling.
/// </summary>
public sealed class TrustBundle
{
    private readonly CancellationTokenSource _changed = new();

    internal TrustBundle(IReadOnlyList<X509Certificate2> roots)
    {
        Roots = roots;
        Pem = string.Concat(roots.Select(r => r.ExportCertificatePem() + "\n"));
        ChangeToken = new CancellationChangeToken(_changed.Token);
    }

    /// <summary>Trusted roots, the one the CA signs under first.</summary>
    public IReadOnlyList<X509Certificate2> Roots { get; }

    /// <summary>All roots as concatenated PEM: what goes into SDS <c>ROOTCA</c> and Istio's <c>root-cert.pem</c>.</summary>
    public string Pem { get; }

    /// <summary>Fires once, when a newer bundle replaces this one.</summary>
    public IChangeToken ChangeToken { get; }

    /// <summary>How roots are named in <see cref="CertificateAuthority.RetireRoot"/>: the SHA-256 hash of the DER certificate, upper-case hex.</summary>
    public static string Thumbprint(X509Certificate2 root)
    {
        ArgumentNullException.ThrowIfNull(root);
        return root.GetCertHashString(HashAlgorithmName.SHA256);
    }

    internal bool Contains(string thumbprint) => Roots.Any(r => string.Equals(Thumbprint(r), thumbprint, StringComparison.OrdinalIgnoreCase));

    internal void Supersede() => _changed.Cancel();

    public override string ToString()
    {
        var text = new StringBuilder();
        foreach (var root in Roots)
        {
            text.Append(root.Subject).Append(" (").Append(Thumbprint(root)).Append(") ");
        }
        return text.ToString().TrimEnd();
    }
}
