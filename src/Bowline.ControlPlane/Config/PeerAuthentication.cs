namespace Bowline.ControlPlane.Config;

/// <summary>
/// An Istio <c>security.istio.io/v1 PeerAuthentication</c>: the mutual TLS mode the sidecars of the selected workloads
/// accept inbound. Without a selector it covers its namespace, and in the root namespace (<see cref="MeshSecurity.RootNamespace"/>)
/// the whole mesh. How policies combine is <see cref="PeerAuthenticationPolicies"/>.
/// </summary>
/// <param name="Selector"><c>selector.matchLabels</c>; empty for a namespace-wide or mesh-wide policy.</param>
/// <param name="Mode"><c>mtls.mode</c>; <see cref="MutualTlsMode.Unset"/> when absent.</param>
/// <param name="PortLevel"><c>portLevelMtls</c>: a workload (container) port to its mode; only with a selector.</param>
internal sealed record PeerAuthentication(
    ResourceMeta Meta,
    IReadOnlyDictionary<string, string> Selector,
    MutualTlsMode Mode,
    IReadOnlyDictionary<int, MutualTlsMode> PortLevel) : MeshResource(Meta)
{
    public bool HasSelector => Selector.Count > 0;

    /// <summary>Whether any part of the policy asks for STRICT (its mode or a port's).</summary>
    public bool AsksForStrict => Mode == MutualTlsMode.Strict || PortLevel.Values.Any(m => m == MutualTlsMode.Strict);
}
