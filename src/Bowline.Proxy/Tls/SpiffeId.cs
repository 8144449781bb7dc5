using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;

namespace Bowline.Proxy.Tls;

/// <summary>
/// A SPIFFE ID of Istio's shape, <c>spiffe://&lt;trust-domain&gt;/ns/&lt;namespace&gt;/sa/&lt;service-account&gt;</c>,
/// as carried by an X.509-SVID. <see cref="Principal"/> is Istio's principal form (the ID without the scheme), which
/// authorization rules match.
/// </summary>
internal sealed record SpiffeId(string TrustDomain, string Namespace, string ServiceAccount)
{
    private const string Scheme = "spiffe://";

    /// <summary>Computed once: metrics label requests with it.</summary>
    public string Uri { get; } = $"{Scheme}{TrustDomain}/ns/{Namespace}/sa/{ServiceAccount}";

    /// <summary>Istio's <c>source.principal</c>: <c>cluster.local/ns/default/sa/bookinfo-productpage</c>.</summary>
    public string Principal => $"{TrustDomain}/ns/{Namespace}/sa/{ServiceAccount}";

    public override string ToString() => Uri;

    public static bool TryParse(string uri, out SpiffeId? id)
    {
        id = null;
        if (!uri.StartsWith(Scheme, StringComparison.Ordinal))
        {
            return false;
        }
        var parts = uri[Scheme.Length..].Split('/');
        if (parts.Length != 5 || parts[0].Length == 0 || parts[1] != "ns" || parts[2].Length == 0 || parts[3] != "sa" || parts[4].Length == 0)
        {
            return false;
        }
        id = new SpiffeId(parts[0], parts[2], parts[4]);
        return true;
    }

    /// <summary>The subject alternative names of <paramref name="certificate"/>: its URIs and DNS names, in order.</summary>
    public static (List<string> Uris, List<string> DnsNames) SubjectAltNames(X509Certificate2 certificate)
    {
        var uris = new List<string>();
        var dns = new List<string>();
        foreach (var extension in certificate.Extensions)
        {
            if (extension.Oid?.Value != "2.5.29.17")
            {
                continue;
            }
            var reader = new AsnReader(extension.RawData, AsnEncodingRules.DER).ReadSequence();
            while (reader.HasData)
            {
                var tag = reader.PeekTag();
                if (tag.TagClass == TagClass.ContextSpecific && tag.TagValue == 6)
                {
                    uris.Add(reader.ReadCharacterString(UniversalTagNumber.IA5String, new Asn1Tag(TagClass.ContextSpecific, 6)));
                }
                else if (tag.TagClass == TagClass.ContextSpecific && tag.TagValue == 2)
                {
                    dns.Add(reader.ReadCharacterString(UniversalTagNumber.IA5String, new Asn1Tag(TagClass.ContextSpecific, 2)));
                }
                else
                {
                    reader.ReadEncodedValue();
                }
            }
        }
        return (uris, dns);
    }
}
