namespace Bowline.ControlPlane.Config;

/// <summary>Istio's PeerAuthentication <c>mtls.mode</c>: what inbound traffic a workload's sidecar accepts.</summary>
internal enum MutualTlsMode
{
    /// <summary>Inherits from the broader policy (port from workload, workload from namespace, namespace from mesh); PERMISSIVE at the top.</summary>
    Unset,

    /// <summary>Plaintext only.</summary>
    Disable,

    /// <summary>Istio mutual TLS or plaintext. Istio's default.</summary>
    Permissive,

    /// <summary>Istio mutual TLS only.</summary>
    Strict,
}
