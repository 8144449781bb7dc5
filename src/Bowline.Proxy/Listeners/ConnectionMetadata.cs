using System.Net;

namespace Bowline.Proxy.Listeners;

/// <summary>
/// What is known about a connection before a filter chain is chosen: its addresses, and what the listener filters
/// read off its first bytes (Envoy's <c>tls_inspector</c> and <c>http_inspector</c>). The input of filter-chain
/// matching; immutable.
/// </summary>
internal sealed record ConnectionMetadata(
    IPAddress DestinationAddress,
    int DestinationPort,
    IPAddress SourceAddress,
    int SourcePort,
    string TransportProtocol,
    string? ServerName,
    IReadOnlyList<string> ApplicationProtocols)
{
    /// <summary>Envoy's transport protocol for a connection the TLS inspector recognised.</summary>
    public const string Tls = "tls";

    /// <summary>Envoy's transport protocol for anything else (or when no TLS inspector ran).</summary>
    public const string RawBuffer = "raw_buffer";

    public bool IsTls => TransportProtocol == Tls;

    /// <summary>A cleartext connection to <paramref name="port"/> with nothing inspected (tests and admin).</summary>
    public static ConnectionMetadata Plaintext(int port) => new(IPAddress.Loopback, port, IPAddress.Loopback, 0, RawBuffer, null, []);
}
