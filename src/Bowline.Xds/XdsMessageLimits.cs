namespace Bowline.Xds;

/// <summary>
/// How large an xDS message may be, the same on both ends of the wire. A Service with 17,000 ports is 17,000
/// clusters: a CDS response of several MB and an EDS subscription of about 0.8 MB, past gRPC's 4 MB default; 64 MiB
/// leaves room for meshes many times that size.
/// </summary>
public static class XdsMessageLimits
{
    /// <summary>The largest DiscoveryRequest or DiscoveryResponse either end sends or accepts, in bytes.</summary>
    public const int MaxMessageBytes = 64 * 1024 * 1024;
}
