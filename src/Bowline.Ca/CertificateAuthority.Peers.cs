using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Bowline.Ca.Authentication;
using Bowline.Ca.Internal;

namespace Bowline.Ca;

/// <summary>The CA's answers for TLS between the control plane and workloads: the control plane's serving certificate, and workload certificates as credentials.</summary>
public sealed partial class CertificateAuthority
{
    /// <summary>
    /// Issues a TLS server certificate for the control plane itself (Istio's istiod certificate for 15012): a fresh
    /// ECDSA P-256 key, the given DNS and IP SANs, serverAuth only, and no SPIFFE ID, so no workload leaf can ever pass
    /// for it and it can never pass for a workload. Cut to the signing chain's expiry, like every leaf.
    /// </summary>
    public ServingCertificate IssueServingCertificate(IReadOnlyCollection<string> dnsNames, IReadOnlyCollection<IPAddress> ipAddresses, TimeSpan ttl)
    {
        ArgumentNullException.ThrowIfNull(dnsNames);
        ArgumentNullException.ThrowIfNull(ipAddresses);
        if (dnsNames.Count + ipAddresses.Count == 0 || ttl <= TimeSpan.Zero)
        {
            throw new ArgumentException("a serving certificate needs at least one DNS name or IP address and a positive lifetime");
        }
        var signer = _state.Signer;
        var now = _time.GetUtcNow();
        var notBefore = Max(Truncate(now - _options.ClockSkewAllowance), signer.NotBefore);
        var notAfter = Min(Truncate(now + ttl), signer.NotAfter);
        if (notAfter <= now)
        {
            Log.SignerExpired(_logger, signer.Certificate.Subject, signer.NotAfter);
            throw new InvalidOperationException($"the CA's signing chain expired at {signer.NotAfter:u}; the operator must rotate the root or supply a new intermediate in {_options.Directory}");
        }
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(EmptyName(), key, signer.Hash);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in dnsNames)
        {
            san.AddDnsName(name);
        }
        foreach (var address in ipAddresses)
        {
            san.AddIpAddress(address);
        }
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(ServerAuthOid)], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(signer.AuthorityKeyIdentifier);
        request.CertificateExtensions.Add(san.Build(critical: true));
        using var signed = request.Create(signer.Certificate.SubjectName, signer.Generator, notBefore, notAfter, Serial());
        var leaf = signed.CopyWithPrivateKey(key);
        var intermediates = new X509Certificate2Collection();
        foreach (var pem in signer.IntermediatePems)
        {
            intermediates.Add(X509Certificate2.CreateFromPem(pem));
        }
        Log.ServingIssued(_logger, string.Join(", ", dnsNames.Concat(ipAddresses.Select(a => a.ToString()))), leaf.SerialNumber, notAfter);
        return new ServingCertificate(leaf, intermediates);
    }

    /// <summary>
    /// Authenticates a caller by the client certificate it presented in the TLS handshake (Istio's
    /// ClientCertAuthenticator): it must chain to a root of the current trust bundle, be valid now, allow clientAuth,
    /// not be a CA, and carry exactly one URI SAN, a SPIFFE ID in this CA's trust domain. The handshake has already
    /// proved the caller holds the certificate's key. Thread-safe.
    /// </summary>
    public CallerAuthentication AuthenticateCertificate(X509Certificate2 presented)
    {
        ArgumentNullException.ThrowIfNull(presented);
        var state = _state;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(state.Bundle.Roots.ToArray());
        chain.ChainPolicy.ExtraStore.AddRange(state.Signer.Intermediates.ToArray());
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = _time.GetUtcNow().UtcDateTime;
        chain.ChainPolicy.VerificationTimeIgnored = false;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid(ClientAuthOid));
        if (!chain.Build(presented))
        {
            var statuses = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct());
            return CallerAuthentication.Failed($"the client certificate (serial {presented.SerialNumber}, issuer '{presented.Issuer}') does not verify against this mesh's roots ({statuses}); present the certificate this control plane's CA issued, or none and a bootstrap token");
        }
        if (presented.Extensions.OfType<X509BasicConstraintsExtension>().Any(b => b.CertificateAuthority))
        {
            return CallerAuthentication.Failed("the client certificate is a CA certificate, not a workload's X.509-SVID");
        }
        return PeerCertificates.Identity(presented, TrustDomain);
    }
}
