using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;
using Bowline.Ca.Authentication;

namespace Bowline.Ca.Internal;

/// <summary>Reads the SPIFFE identity of a verified X.509-SVID: exactly one URI SAN, <c>spiffe://&lt;td&gt;/ns/&lt;ns&gt;/sa/&lt;sa&gt;</c>.</summary>
internal static class PeerCertificates
{
    private const string SubjectAltNameOid = "2.5.29.17";

    public static CallerAuthentication Identity(X509Certificate2 certificate, string trustDomain)
    {
        var uris = new List<string>();
        try
        {
            foreach (var extension in certificate.Extensions.Where(e => e.Oid?.Value == SubjectAltNameOid))
            {
                var sequence = new AsnReader(extension.RawData, AsnEncodingRules.DER).ReadSequence();
                while (sequence.HasData)
                {
                    var tag = sequence.PeekTag();
                    if (tag.TagClass == TagClass.ContextSpecific && tag.TagValue == 6 && !tag.IsConstructed)
                    {
                        uris.Add(sequence.ReadCharacterString(UniversalTagNumber.IA5String, tag));
                    }
                    else
                    {
                        sequence.ReadEncodedValue();
                    }
                }
            }
        }
        catch (AsnContentException e)
        {
            return CallerAuthentication.Failed($"the client certificate's subjectAltName is not valid DER ({e.Message})");
        }
        if (uris.Count != 1)
        {
            return CallerAuthentication.Failed($"the client certificate carries {uris.Count} URI SANs ({string.Join(", ", uris)}); an X.509-SVID carries exactly one SPIFFE ID");
        }
        var uri = uris[0];
        var prefix = $"spiffe://{trustDomain}/";
        if (!uri.StartsWith(prefix, StringComparison.Ordinal))
        {
            return CallerAuthentication.Failed($"the client certificate's identity {uri} is not in this mesh's trust domain {trustDomain}");
        }
        return uri[prefix.Length..].Split('/') is ["ns", var ns, "sa", var sa] && WorkloadIdentity.IsValidSegment(ns) && WorkloadIdentity.IsValidSegment(sa)
            ? CallerAuthentication.Succeeded(new WorkloadIdentity(ns, sa))
            : CallerAuthentication.Failed($"the client certificate's identity {uri} is not of the form spiffe://{trustDomain}/ns/<namespace>/sa/<service-account>");
    }
}
