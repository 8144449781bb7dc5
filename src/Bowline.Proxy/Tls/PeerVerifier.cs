using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Bowline.Proxy.Tls;

/// <summary>Who is on the other end of a verified TLS connection: the certificate, and its SPIFFE ID when it carries one.</summary>
internal sealed record PeerIdentity(X509Certificate2 Certificate, SpiffeId? Spiffe)
{
    /// <summary>Istio's principal (<c>cluster.local/ns/default/sa/productpage</c>), or null for a certificate without a SPIFFE ID.</summary>
    public string? Principal => Spiffe?.Principal;

    /// <summary>The certificate's URI and DNS SANs, read once per connection (RBAC's <c>authenticated</c> matches them per request).</summary>
    public (List<string> Uris, List<string> DnsNames) SubjectAltNames => _subjectAltNames ??= SpiffeId.SubjectAltNames(Certificate);

    private (List<string> Uris, List<string> DnsNames)? _subjectAltNames;
}

/// <summary>
/// The checks a peer certificate passes after its chain verified against the context's roots: the X.509-SVID rules
/// when it carries a SPIFFE ID (exactly one URI SAN, not a CA, not a certificate signer, the right extended key
/// usage) or when the context demands one, and the SAN matchers. A failure names the rule, for the log line and the
/// handshake's error.
/// </summary>
internal static class PeerVerifier
{
    private const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuth = "1.3.6.1.5.5.7.3.2";

    /// <summary>Envoy's counters for a failed verification: which of ssl.fail_verify_* to bump.</summary>
    public enum Failure
    {
        None,
        NoCertificate,
        Error,
        San,
    }

    public static (Failure Failure, string? Reason, PeerIdentity? Peer) Verify(X509Certificate2? certificate, SslPolicyErrors errors, X509Chain? chain, TlsSettings settings, bool peerIsClient, bool requireSpiffe, bool checkHostName = false)
    {
        if (certificate is null)
        {
            return (Failure.NoCertificate, "the peer presented no certificate", null);
        }
        if (checkHostName && (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            return (Failure.San, "the certificate is not for the host name the request went to (auto_san_validation)", null);
        }
        // Otherwise names are checked by the SAN matchers below, never against the TCP host name.
        errors &= ~SslPolicyErrors.RemoteCertificateNameMismatch;
        if (errors != SslPolicyErrors.None)
        {
            var status = chain?.ChainStatus.Select(s => s.StatusInformation.Trim()).FirstOrDefault(s => s.Length > 0);
            return (Failure.Error, $"the certificate chain does not verify against the trusted roots ({status ?? errors.ToString()})", null);
        }
        var (uris, dnsNames) = SpiffeId.SubjectAltNames(certificate);
        SpiffeId? spiffe = null;
        if (requireSpiffe || uris.Any(u => u.StartsWith("spiffe://", StringComparison.Ordinal)))
        {
            if (uris.Count != 1)
            {
                return (Failure.Error, $"an X.509-SVID has exactly one URI SAN; this certificate has {uris.Count}", null);
            }
            if (!SpiffeId.TryParse(uris[0], out spiffe))
            {
                return (Failure.Error, $"URI SAN '{uris[0]}' is not a SPIFFE ID of the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>", null);
            }
            foreach (var extension in certificate.Extensions)
            {
                switch (extension)
                {
                    case X509BasicConstraintsExtension { CertificateAuthority: true }:
                        return (Failure.Error, "the certificate is a CA certificate; a workload identity must not be", null);
                    case X509KeyUsageExtension usage when (usage.KeyUsages & (X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign)) != 0:
                        return (Failure.Error, "the certificate may sign certificates (keyCertSign); a workload identity must not", null);
                    case X509EnhancedKeyUsageExtension eku when !eku.EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>().Any(o => o.Value == (peerIsClient ? ClientAuth : ServerAuth)):
                        return (Failure.Error, $"the certificate's extended key usage lacks {(peerIsClient ? "clientAuth" : "serverAuth")}", null);
                }
            }
        }
        if (settings.SanMatchers.Length > 0 && !settings.SanMatchers.Any(m => m.Matches(uris, dnsNames)))
        {
            var names = string.Join(", ", uris.Concat(dnsNames));
            return (Failure.San, $"no subject alternative name ({(names.Length == 0 ? "none" : names)}) is one this context accepts", null);
        }
        return (Failure.None, null, new PeerIdentity(certificate, spiffe));
    }
}
