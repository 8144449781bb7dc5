using System.Security.Cryptography;
using System.Text;

namespace Bowline.Proxy.Http;

/// <summary>What the HCM does with <c>x-forwarded-client-cert</c> (Envoy's <c>forward_client_cert_details</c>).</summary>
internal enum ClientCertMode
{
    /// <summary>Removed: the default, so nothing a client writes into it survives the first sidecar.</summary>
    Sanitize,

    /// <summary>Forwarded as received, on mTLS connections only.</summary>
    ForwardOnly,

    /// <summary>On mTLS connections, the peer's details appended to what was received.</summary>
    AppendForward,

    /// <summary>On mTLS connections, replaced by the peer's details.</summary>
    SanitizeSet,

    /// <summary>Forwarded as received, whatever the connection.</summary>
    AlwaysForwardOnly,
}

/// <summary>
/// The HCM's handling of the XFCC header, applied once before any filter runs: Envoy's modes and
/// <c>set_current_client_cert_details</c>. Stricter than Envoy in one respect, on purpose: on a connection without a
/// verified client certificate (plaintext under PERMISSIVE) the header is removed in every mode but
/// ALWAYS_FORWARD_ONLY, where Envoy would pass a client-written one on to the app as if a sidecar had vouched for it.
/// </summary>
internal sealed record ClientCertForwarding(ClientCertMode Mode, bool Subject, bool Cert, bool Chain, bool Dns, bool Uri)
{
    public const string Header = "x-forwarded-client-cert";

    public static readonly ClientCertForwarding Default = new(ClientCertMode.Sanitize, false, false, false, false, false);

    public void Apply(HttpStream stream)
    {
        var headers = stream.Context.Request.Headers;
        if (Mode == ClientCertMode.AlwaysForwardOnly)
        {
            return;
        }
        var connection = stream.Connection;
        if (Mode == ClientCertMode.Sanitize || connection?.Peer is not { } peer)
        {
            headers.Remove(Header);
            return;
        }
        if (Mode == ClientCertMode.ForwardOnly)
        {
            return;
        }
        // Rendered once per connection (a SHA-256 of the certificate, its SANs), not per request.
        if (connection.ClientCertElement is not { } cached || !ReferenceEquals(cached.Settings, this))
        {
            connection.ClientCertElement = cached = new ClientCertElement(this, Element(connection.LocalUri, peer));
        }
        var element = cached.Value;
        if (Mode == ClientCertMode.AppendForward && headers.TryGetValue(Header, out var received) && received.Count > 0)
        {
            headers[Header] = received.ToString() + "," + element;
        }
        else
        {
            headers[Header] = element;
        }
    }

    /// <summary>One XFCC element: <c>By</c> (our URI SAN), <c>Hash</c> (the peer certificate's SHA-256), then what is configured.</summary>
    private string Element(string? localUri, Tls.PeerIdentity peer)
    {
        var element = new StringBuilder();
        if (localUri is not null)
        {
            element.Append("By=").Append(localUri).Append(';');
        }
        element.Append("Hash=").Append(Convert.ToHexStringLower(SHA256.HashData(peer.Certificate.RawData)));
        if (Cert)
        {
            element.Append(";Cert=\"").Append(System.Uri.EscapeDataString(peer.Certificate.ExportCertificatePem())).Append('"');
        }
        if (Subject)
        {
            element.Append(";Subject=\"").Append(peer.Certificate.Subject.Replace("\"", "\\\"", StringComparison.Ordinal)).Append('"');
        }
        var (uris, dnsNames) = peer.SubjectAltNames;
        if (Uri)
        {
            foreach (var uri in uris)
            {
                element.Append(";URI=").Append(uri);
            }
        }
        if (Dns)
        {
            foreach (var dns in dnsNames)
            {
                element.Append(";DNS=").Append(dns);
            }
        }
        return element.ToString();
    }
}

/// <summary>One connection's rendered XFCC element and the settings (a compiled HCM's) it was rendered under.</summary>
internal sealed record ClientCertElement(ClientCertForwarding Settings, string Value);
