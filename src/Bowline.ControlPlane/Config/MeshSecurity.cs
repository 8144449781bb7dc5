namespace Bowline.ControlPlane.Config;

/// <summary>
/// The mesh-wide security settings translation reads, from the control plane's options (not from config files):
/// whether automatic mTLS and PeerAuthentication take effect, and the SPIFFE trust domain of workload certificates.
/// </summary>
/// <param name="MeshMtls">
/// <c>ControlPlaneOptions.MeshMtls</c>: on when the control plane's CA issues workload certificates. Off, no TLS is
/// asked of any sidecar for mesh traffic (inbound chains stay plaintext, clusters get no automatic mTLS) and policies
/// that would require it are reported as not enforced.
/// </param>
/// <param name="TrustDomain">The trust domain of <c>spiffe://&lt;trust-domain&gt;/ns/&lt;ns&gt;/sa/&lt;sa&gt;</c>; Istio's default <c>cluster.local</c>.</param>
/// <param name="Paths">Istio's <c>meshConfig.pathNormalization</c>: how every HCM normalizes request paths before routing and authorization.</param>
internal sealed record MeshSecurity(bool MeshMtls, string TrustDomain, PathNormalization Paths = PathNormalization.Base)
{
    /// <summary>Istio's default <c>meshConfig.rootNamespace</c>: a PeerAuthentication without a selector there applies to the whole mesh.</summary>
    public const string RootNamespace = "istio-system";

    public const string DefaultTrustDomain = "cluster.local";

    /// <summary>Mesh mTLS off: what translation did before the CA existed.</summary>
    public static readonly MeshSecurity Off = new(false, DefaultTrustDomain);

    /// <summary>The SPIFFE ID of a workload identity in this trust domain.</summary>
    public string SpiffeId(string ns, string serviceAccount) => $"spiffe://{TrustDomain}/ns/{ns}/sa/{serviceAccount}";
}

/// <summary>
/// Istio's <c>meshConfig.pathNormalization.normalization</c>. Paths are normalized once, before routing, and the
/// normalized path is what authorization matches and the upstream receives (docs/security.md).
/// </summary>
public enum PathNormalization
{
    /// <summary>No normalization beyond what the HTTP parser does (Istio's NONE; not recommended).</summary>
    None,

    /// <summary>RFC 3986 normalization: dot segments, backslashes as slashes (Istio's default).</summary>
    Base,

    /// <summary>BASE, and runs of slashes merged into one.</summary>
    MergeSlashes,

    /// <summary>MERGE_SLASHES, and <c>%2F</c>/<c>%5C</c> decoded into separators first.</summary>
    DecodeAndMergeSlashes,
}
