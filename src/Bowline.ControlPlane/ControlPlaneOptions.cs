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

    /// <summary>
    /// Plaintext xDS (ADS over gRPC, h2c), Istio's 15010, with the CA beside it when <see cref="Ca"/> is set. Nothing on
    /// it is authenticated or encrypted: config and bootstrap tokens cross it in the clear, which is what the embedded
    /// default accepts on loopback. Bound to another address it logs a warning; <see cref="PlaintextXds"/> turns it off.
    /// </summary>
    public int XdsPort { get; init; } = 15010;

    /// <summary>Whether to serve <see cref="XdsPort"/> at all. Off, only the TLS port serves ADS and the CA.</summary>
    public bool PlaintextXds { get; init; } = true;

    /// <summary>
    /// xDS and the CA over TLS, Istio's 15012; served when <see cref="Ca"/> is set, whose certificate it presents
    /// (DNS SANs <c>istiod.istio-system.svc</c> and <c>localhost</c>, plus the bind address). Client certificates are
    /// requested and optional: the CA takes a bootstrap token from a proxy that has none yet, while ADS requires a
    /// workload certificate of the mesh and serves a node only the config of the identity that certificate proves.
    /// </summary>
    public int SecureXdsPort { get; init; } = 15012;

    /// <summary>Lifetime of the control plane's own serving certificate on <see cref="SecureXdsPort"/>; it is renewed at half of it.</summary>
    public TimeSpan ServingCertificateTtl { get; init; } = TimeSpan.FromHours(24);

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

    /// <summary>Istio's <c>meshConfig.accessLogFile</c>: every sidecar and gateway logs each request there; null, no access logs.</summary>
    public string? AccessLogFile { get; init; }

    /// <summary>Istio's <c>meshConfig.accessLogEncoding</c>.</summary>
    public Config.AccessLogEncoding AccessLogEncoding { get; init; }

    /// <summary>Istio's <c>meshConfig.accessLogFormat</c>; null is Istio's default for the encoding.</summary>
    public string? AccessLogFormat { get; init; }

    internal Config.MeshTelemetry Telemetry => AccessLogFile is null ? Config.MeshTelemetry.Off : new(AccessLogFile, AccessLogEncoding, AccessLogFormat);

    /// <summary>How long a burst of config changes must be quiet before it is translated and pushed.</summary>
    public TimeSpan Debounce { get; init; } = TimeSpan.FromMilliseconds(100);
}
