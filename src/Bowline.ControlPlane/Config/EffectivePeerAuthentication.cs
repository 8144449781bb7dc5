namespace Bowline.ControlPlane.Config;

/// <summary>The mTLS mode one workload's sidecar accepts inbound, per port.</summary>
/// <param name="Mode">The workload's mode (never UNSET).</param>
/// <param name="PerPort">Port-level modes of the workload policy, UNSET already resolved to <paramref name="Mode"/>.</param>
/// <param name="Workload">The workload-level policy that applies, if any.</param>
/// <param name="Shadowed">Other workload-level policies selecting the same workload, newer than <paramref name="Workload"/>: they have no effect.</param>
internal sealed record EffectivePeerAuthentication(
    MutualTlsMode Mode,
    IReadOnlyDictionary<int, MutualTlsMode> PerPort,
    PeerAuthentication? Workload,
    IReadOnlyList<PeerAuthentication> Shadowed)
{
    /// <summary>The mode of a workload (container) port.</summary>
    public MutualTlsMode ModeFor(int port) => PerPort.TryGetValue(port, out var mode) ? mode : Mode;
}
