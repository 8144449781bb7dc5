namespace Bowline.Proxy.Xds;

/// <summary>
/// Message and window sizes of the xDS channel, matching the control plane's: a Service with 17,000 ports is a CDS
/// response of several MB and an EDS subscription of about 0.8 MB, past gRPC's and HTTP/2's defaults.
/// </summary>
internal static class AdsChannelLimits
{
    /// <summary>The largest DiscoveryResponse accepted and DiscoveryRequest sent, in bytes.</summary>
    public const int MaxMessageBytes = Bowline.Xds.XdsMessageLimits.MaxMessageBytes;

    /// <summary>
    /// The initial HTTP/2 receive window per stream, in bytes: the largest SocketsHttpHandler allows without a runtime
    /// switch (16 MiB), so a large response arrives without waiting for the window to grow round trip by round trip.
    /// Memory is only used as data arrives and the xDS loop reads it at once.
    /// </summary>
    public const int Http2StreamWindowBytes = 16 * 1024 * 1024;
}
