using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Bowline.Ca.Internal;

/// <summary>
/// Reads what a CSR asks for and refuses anything the CA will not sign: a CSR that does not verify, a weak or
/// unusual key, or a SAN that is not exactly one SPIFFE URI of the caller's own identity. Nothing else in the CSR
/// matters: the leaf is built from the CSR's public key alone.
/// </summary>
internal static class CsrInspector
{
    /// <summary>A P-384 CSR is under 1 KiB and an RSA 8192 one under 3 KiB; a larger one is not worth parsing.</summary>
    public const int MaxPemLength = 16 * 1024;

    private const string SubjectAltNameOid = "2.5.29.17";
    private const string EcPublicKeyOid = "1.2.840.10045.2.1";
    private const string RsaOid = "1.2.840.113549.1.1.1";
    private const string P256Oid = "1.2.840.10045.3.1.7";
    private const string P384Oid = "1.3.132.0.34";
    private const int MinRsaBits = 2048;
    private const int MaxRsaBits = 8192;

    private const string Fix = "create the CSR with an ECDSA P-256 key (what Istio's agent uses) and exactly one URI SAN, the workload's SPIFFE ID";

    /// <summary>Parses the PEM CSR and verifies its signature (proof that the caller holds the private key).</summary>
    public static CertificateRequest Load(string? pem)
    {
        if (string.IsNullOrWhiteSpace(pem))
        {
            throw Refuse(CertificateRequestRefusal.MalformedCsr, $"the request carries no CSR: put a PEM 'CERTIFICATE REQUEST' in the csr field; {Fix}");
        }
        if (pem.Length > MaxPemLength)
        {
            throw Refuse(CertificateRequestRefusal.MalformedCsr, $"the CSR is {pem.Length} characters, more than the {MaxPemLength} a workload CSR needs; {Fix}");
        }
        try
        {
            // Extensions are loaded only so the SAN can be inspected; none of them is copied into the leaf.
            return CertificateRequest.LoadSigningRequestPem(pem, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.UnsafeLoadCertificateExtensions, RSASignaturePadding.Pkcs1);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException or AsnContentException)
        {
            throw Refuse(CertificateRequestRefusal.MalformedCsr, $"the CSR is not a valid, correctly signed PKCS#10 request in PEM ({e.Message}); {Fix}");
        }
    }

    public static void CheckKey(PublicKey key)
    {
        switch (key.Oid.Value)
        {
            case EcPublicKeyOid:
                var curve = CurveOid(key);
                if (curve is not (P256Oid or P384Oid))
                {
                    throw Refuse(CertificateRequestRefusal.UnsupportedKey, $"the CSR's ECDSA key is on curve {curve ?? "(explicit parameters)"}; only P-256 and P-384 are accepted: {Fix}");
                }
                break;
            case RsaOid:
                using (var rsa = key.GetRSAPublicKey())
                {
                    var bits = rsa?.KeySize ?? 0;
                    if (bits is < MinRsaBits or > MaxRsaBits)
                    {
                        throw Refuse(CertificateRequestRefusal.UnsupportedKey, $"the CSR's RSA key has {bits} bits; RSA keys must have {MinRsaBits} to {MaxRsaBits}: use RSA 2048 or larger, or {Fix}");
                    }
                }
                break;
            default:
                throw Refuse(CertificateRequestRefusal.UnsupportedKey, $"the CSR's key algorithm {key.Oid.FriendlyName ?? key.Oid.Value} is not accepted (ECDSA P-256/P-384 or RSA 2048+): {Fix}");
        }
    }

    /// <summary>The CSR's one SAN, which must be a URI.</summary>
    public static string SingleUriSan(CertificateRequest csr)
    {
        var extensions = csr.CertificateExtensions.Where(e => e.Oid?.Value == SubjectAltNameOid).ToList();
        if (extensions.Count == 0)
        {
            throw Refuse(CertificateRequestRefusal.InvalidIdentity, $"the CSR has no subjectAltName; {Fix}");
        }
        if (extensions.Count > 1)
        {
            throw Refuse(CertificateRequestRefusal.InvalidIdentity, $"the CSR has {extensions.Count} subjectAltName extensions; {Fix}");
        }

        var names = new List<(string Kind, string? Uri)>();
        try
        {
            var reader = new AsnReader(extensions[0].RawData, AsnEncodingRules.DER);
            var sequence = reader.ReadSequence();
            reader.ThrowIfNotEmpty();
            while (sequence.HasData)
            {
                var tag = sequence.PeekTag();
                if (tag.TagClass == TagClass.ContextSpecific && tag.TagValue == 6 && !tag.IsConstructed)
                {
                    names.Add(("URI", sequence.ReadCharacterString(UniversalTagNumber.IA5String, tag)));
                }
                else
                {
                    names.Add((Describe(tag), null));
                    sequence.ReadEncodedValue();
                }
            }
        }
        catch (AsnContentException e)
        {
            throw Refuse(CertificateRequestRefusal.InvalidIdentity, $"the CSR's subjectAltName is not valid DER ({e.Message}); {Fix}");
        }

        return names switch
        {
            [("URI", var uri)] => uri!,
            [var other] => throw Refuse(CertificateRequestRefusal.InvalidIdentity, $"the CSR's SAN is a {other.Kind}, not a URI; {Fix}"),
            [] => throw Refuse(CertificateRequestRefusal.InvalidIdentity, $"the CSR's subjectAltName is empty; {Fix}"),
            _ => throw Refuse(CertificateRequestRefusal.InvalidIdentity, $"the CSR has {names.Count} SANs ({string.Join(", ", names.Select(n => n.Uri ?? n.Kind))}); {Fix}"),
        };
    }

    /// <summary>Checks that <paramref name="uri"/> is exactly <paramref name="caller"/>'s SPIFFE ID in <paramref name="trustDomain"/>.</summary>
    public static void CheckIdentity(string uri, string trustDomain, WorkloadIdentity caller)
    {
        var expected = caller.SpiffeId(trustDomain);
        if (string.Equals(uri, expected, StringComparison.Ordinal))
        {
            return;
        }
        const string Scheme = "spiffe://";
        if (!uri.StartsWith(Scheme, StringComparison.Ordinal))
        {
            throw Refuse(CertificateRequestRefusal.InvalidIdentity, $"the CSR's URI SAN '{uri}' is not a SPIFFE ID; ask for {expected}, the caller's identity");
        }
        var rest = uri.AsSpan(Scheme.Length);
        var slash = rest.IndexOf('/');
        var domain = slash < 0 ? rest : rest[..slash];
        if (!domain.SequenceEqual(trustDomain))
        {
            throw Refuse(CertificateRequestRefusal.IdentityMismatch, $"the CSR asks for trust domain '{domain}' but this CA issues identities in '{trustDomain}'; ask for {expected}");
        }
        string[] path = slash < 0 ? [] : rest[(slash + 1)..].ToString().Split('/');
        if (path is not ["ns", var ns, "sa", var sa] || !WorkloadIdentity.IsValidSegment(ns) || !WorkloadIdentity.IsValidSegment(sa))
        {
            throw Refuse(CertificateRequestRefusal.InvalidIdentity, $"the CSR's SPIFFE ID '{uri}' is not of the form spiffe://{trustDomain}/ns/<namespace>/sa/<service-account>; ask for {expected}");
        }
        throw Refuse(CertificateRequestRefusal.IdentityMismatch, $"the CSR asks for {uri} but the caller's credentials prove {expected}; a workload can only be issued its own identity, so use the token of the workload that runs as ns/{ns}/sa/{sa}");
    }

    private static string? CurveOid(PublicKey key)
    {
        try
        {
            if (key.EncodedParameters?.RawData is not { Length: > 0 } parameters)
            {
                return null;
            }
            var reader = new AsnReader(parameters, AsnEncodingRules.DER);
            return reader.PeekTag().HasSameClassAndValue(Asn1Tag.ObjectIdentifier) ? reader.ReadObjectIdentifier() : null;
        }
        catch (AsnContentException)
        {
            return null;
        }
    }

    private static string Describe(Asn1Tag tag) => tag.TagClass != TagClass.ContextSpecific ? "malformed name" : tag.TagValue switch
    {
        0 => "otherName",
        1 => "email address",
        2 => "DNS name",
        4 => "directory name",
        7 => "IP address",
        8 => "registered ID",
        _ => $"name of type [{tag.TagValue}]",
    };

    private static CertificateRequestException Refuse(CertificateRequestRefusal refusal, string message) => new(refusal, message);
}
