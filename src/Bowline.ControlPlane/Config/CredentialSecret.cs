namespace Bowline.ControlPlane.Config;

/// <summary>
/// A Kubernetes <c>v1 Secret</c> that holds TLS material for a Gateway's <c>credentialName</c>, read as Istio's
/// credential controller reads it (<c>tls.crt</c>/<c>tls.key</c> or <c>cert</c>/<c>key</c>, and <c>ca.crt</c> or
/// <c>cacert</c>). PEM text, validated when parsed (it loads, the key matches the leaf).
/// </summary>
/// <param name="CertificateChain">The leaf first, then intermediates; null for a CA-only secret (<c>&lt;name&gt;-cacert</c>).</param>
/// <param name="CaCertificates">The roots client certificates are verified against (MUTUAL); null when absent.</param>
internal sealed record CredentialSecret(ResourceMeta Meta, string Type, string? CertificateChain, string? PrivateKey, string? CaCertificates) : MeshResource(Meta);

/// <summary>
/// Every <see cref="CredentialSecret"/> by namespace and name, with Istio's lookup rules (pilot/pkg/credentials/kube):
/// a certificate is the secret of that name; a CA bundle named <c>&lt;name&gt;-cacert</c> is that secret's CA, else the
/// CA inside the secret <c>&lt;name&gt;</c>.
/// </summary>
internal sealed class CredentialSecrets
{
    /// <summary>Istio's suffix of a credential's CA secret name.</summary>
    public const string CaSuffix = "-cacert";

    private readonly Dictionary<(string Namespace, string Name), CredentialSecret> _secrets = [];

    public CredentialSecrets(IEnumerable<CredentialSecret> secrets)
    {
        foreach (var secret in secrets)
        {
            _secrets[(secret.Meta.Namespace, secret.Meta.Name)] = secret;
        }
    }

    public int Count => _secrets.Count;

    /// <summary>The certificate and key of <paramref name="name"/> in <paramref name="ns"/>, or null.</summary>
    public CredentialSecret? Certificate(string ns, string name) =>
        _secrets.GetValueOrDefault((ns, name)) is { CertificateChain: not null, PrivateKey: not null } secret ? secret : null;

    /// <summary>The CA bundle an SDS name <c>&lt;name&gt;-cacert</c> stands for, and the secret it came from; null when neither holds one.</summary>
    public (string Pem, CredentialSecret From)? CaBundle(string ns, string caName)
    {
        if (_secrets.GetValueOrDefault((ns, caName)) is { } own)
        {
            return own.CaCertificates is { } pem ? (pem, own) : null;
        }
        if (caName.EndsWith(CaSuffix, StringComparison.Ordinal) && _secrets.GetValueOrDefault((ns, caName[..^CaSuffix.Length])) is { CaCertificates: { } ca } combined)
        {
            return (ca, combined);
        }
        return null;
    }
}
