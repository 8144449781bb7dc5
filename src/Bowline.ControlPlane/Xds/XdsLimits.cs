namespace Bowline.ControlPlane.Xds;

/// <summary>
/// How large xDS messages may be, and the HTTP/2 windows sized for them. A Service with 17,000 ports is 17,000
/// clusters: a CDS response of several MB and an EDS subscription of about 0.8 MB, past gRPC's 4 MB default and
/// Kestrel's 768 KiB stream window. 64 MiB leaves room for meshes many times that size; the proxy uses the same limit.
/// </summary>
internal static class XdsLimits
{
    /// <summary>The largest DiscoveryRequest accepted and the largest DiscoveryResponse sent, in bytes.</summary>
    public const int MaxMessageBytes = Bowline.Xds.XdsMessageLimits.MaxMessageBytes;

    /// <summary>
    /// Kestrel's HTTP/2 receive windows on the xDS port, in bytes: a whole message of <see cref="MaxMessageBytes"/> (plus
    /// gRPC framing) fits, so a client's write of its largest request completes even while the stream is busy writing.
    /// A proxy holds one ADS stream per connection, so the connection window equals the stream window.
    /// </summary>
    public const int Http2WindowBytes = MaxMessageBytes + (1024 * 1024);

    /// <summary>
    /// Requests read off the wire and not yet handled, per stream. A client sends at most a few (an ACK and the
    /// subscriptions it implies) per response it reads, so one that follows the protocol never gets near this; past
    /// it, reading waits and HTTP/2 flow control pushes back, which bounds what one stream can make the server hold.
    /// </summary>
    public const int MaxQueuedRequests = 16;
}
