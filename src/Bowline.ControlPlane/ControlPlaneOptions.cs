using System.Net;
using Bowline.Ca;

namespace Bowline.ControlPlane;

/// <summary>Settings of one control plane process. Ports follow Istio's conventions; every one may be 0 (any free port) in tests.</summary>
public sealed class ControlPlaneOptions
{
    /// <summary>Directories of mesh config YAML, watched. The first is the user's config; others hold registrations (WorkloadEntries written by <c>bowline up</c>).</summary>
    public IReadOnlyList<string> ConfigDirectories { get; init; } = [];

    /// <summary>Address the xDS and monitoring ports bind to.</summary>
    public IPAddress BindAddress { get; init; } = IPAddress.Loopback;

    /// <summary>Plaintext xDS (ADS over gRPC, h2c), Istio's 15010.</summary>
    public int XdsPort { get; init; } = 15010;

    /// <summary>Monitoring: <c>/metrics</c>, <c>/ready</c>, <c>/debug/config</c>, <c>/debug/connections</c>. Istio's 15014.</summary>
    public int MonitoringPort { get; init; } = 15014;

    /// <summary>
    /// The certificate authority, served as Istio's <c>IstioCertificateService</c> on the xDS port; null serves none.
    /// Its directory holds the CA files (generated at first start) and the bootstrap tokens.
    /// </summary>
    public CaOptions? Ca { get; init; }

    /// <summary>
    /// Automatic mTLS and PeerAuthentication take effect; on when the control plane's CA issues workload certificates
    /// (<c>bowline up</c> turns it on). Off, translation asks no sidecar for TLS on mesh traffic, and a STRICT
    /// PeerAuthentication is reported as not enforced.
    /// </summary>
    public bool MeshMtls { get; init; }

    /// <summary>Istio's <c>meshConfig.pathNormalization</c> for every sidecar and gateway; BASE, as in Istio.</summary>
    public Config.PathNormalization PathNormalization { get; init; } = Config.PathNormalization.Base;

    /// <summary>How long a burst of config changes must be quiet before it is translated and pushed.</summary>
    public TimeSpan Debounce { get; init; } = TimeSpan.FromMilliseconds(100);
}
