namespace Bowline.ControlPlane.Config;

/// <summary>
/// Every PeerAuthentication of one config generation, combined with Istio's rules (pilot/pkg/model/authentication.go
/// and pilot/pkg/security/authn ComposePeerAuthentication): the narrowest scope wins (workload selector, then the
/// namespace-wide policy, then the mesh-wide one in the root namespace), the oldest wins among policies of the same
/// scope, UNSET inherits from the broader scope, a port-level mode overrides the workload's, and with nothing set
/// the mode is PERMISSIVE. Immutable; built once per generation.
/// </summary>
/// <remarks>
/// "Oldest" is Istio's order: <c>metadata.creationTimestamp</c>, then name, then namespace. Files rarely carry a
/// timestamp, so among policies without one the first by name wins (a policy without one counts as older than any
/// with one, as Go's zero time does in Istio).
/// </remarks>
internal sealed class PeerAuthenticationPolicies
{
    private readonly PeerAuthentication? _mesh;
    private readonly Dictionary<string, PeerAuthentication> _namespaceWide = new(StringComparer.Ordinal);
    private readonly ILookup<string, PeerAuthentication> _workload;
    private readonly List<string> _warnings = [];

    public PeerAuthenticationPolicies(IEnumerable<PeerAuthentication> policies, MeshSecurity security)
    {
        var sorted = policies
            .OrderBy(p => p.Meta.CreationTimestamp ?? DateTimeOffset.MinValue)
            .ThenBy(p => p.Meta.Name, StringComparer.Ordinal)
            .ThenBy(p => p.Meta.Namespace, StringComparer.Ordinal)
            .ToList();
        All = sorted;
        foreach (var policy in sorted.Where(p => !p.HasSelector))
        {
            var isMesh = policy.Meta.Namespace == MeshSecurity.RootNamespace;
            var winner = isMesh ? _mesh : _namespaceWide.GetValueOrDefault(policy.Meta.Namespace);
            if (winner is not null)
            {
                _warnings.Add($"{policy.Meta} ({policy.Meta.File}) is ignored: {(isMesh ? "the mesh" : $"namespace {policy.Meta.Namespace}")} already has the {(isMesh ? "mesh-wide" : "namespace-wide")} {winner.Meta}, which is older (or as old and first by name); Istio applies only the oldest policy without a selector per namespace, so merge the two");
                continue;
            }
            if (isMesh)
            {
                _mesh = policy;
            }
            else
            {
                _namespaceWide[policy.Meta.Namespace] = policy;
            }
        }
        // Istio ignores selector policies in the root namespace (they are neither mesh-wide nor a workload's); the parser warns.
        _workload = sorted.Where(p => p.HasSelector && p.Meta.Namespace != MeshSecurity.RootNamespace).ToLookup(p => p.Meta.Namespace, StringComparer.Ordinal);
        if (!security.MeshMtls)
        {
            foreach (var policy in sorted.Where(p => p.AsksForStrict))
            {
                // A security-weakening no-op must never be silent.
                _warnings.Add($"{policy.Meta} ({policy.Meta.File}): mTLS mode STRICT is NOT enforced: mesh mTLS is off (the control plane's MeshMtls option, which bowline up turns on with the CA), so the workloads it selects still accept plaintext from anyone who can reach them");
            }
        }
    }

    /// <summary>Every policy, oldest first.</summary>
    public IReadOnlyList<PeerAuthentication> All { get; }

    /// <summary>Policies that lose to another, and policies not enforced; reported as translation warnings.</summary>
    public IReadOnlyList<string> Warnings => _warnings;

    /// <summary>The mesh-wide mode (root namespace, no selector), UNSET resolved to PERMISSIVE; null when there is no such policy.</summary>
    public MutualTlsMode? MeshMode => _mesh is null ? null : Resolve(_mesh.Mode, MutualTlsMode.Permissive);

    /// <summary>
    /// What a client infers about a service in <paramref name="ns"/> (Istio's BestEffortInferServiceMTLSMode): the
    /// namespace-wide policy's mode, else the mesh-wide one, else PERMISSIVE. Automatic mTLS is off toward DISABLE.
    /// </summary>
    public MutualTlsMode NamespaceMode(string ns)
    {
        var inherited = MeshMode ?? MutualTlsMode.Permissive;
        return ns != MeshSecurity.RootNamespace && _namespaceWide.TryGetValue(ns, out var policy) ? Resolve(policy.Mode, inherited) : inherited;
    }

    /// <summary>The effective policy of the workload in <paramref name="ns"/> with <paramref name="labels"/>.</summary>
    public EffectivePeerAuthentication ForWorkload(string ns, IReadOnlyDictionary<string, string> labels)
    {
        var inRoot = ns == MeshSecurity.RootNamespace;
        var namespaceWide = inRoot ? null : _namespaceWide.GetValueOrDefault(ns);
        var selecting = inRoot ? [] : _workload[ns].Where(p => Selects(p.Selector, labels)).ToList();
        var workload = selecting.FirstOrDefault();

        var mode = MutualTlsMode.Permissive;
        foreach (var policy in new[] { _mesh, namespaceWide, workload })
        {
            if (policy is { Mode: not MutualTlsMode.Unset })
            {
                mode = policy.Mode;
            }
        }
        var perPort = new Dictionary<int, MutualTlsMode>();
        foreach (var (port, portMode) in workload?.PortLevel ?? new Dictionary<int, MutualTlsMode>())
        {
            perPort[port] = Resolve(portMode, mode);
        }
        return new EffectivePeerAuthentication(mode, perPort, workload, selecting.Skip(1).ToList());
    }

    private static MutualTlsMode Resolve(MutualTlsMode mode, MutualTlsMode inherited) => mode == MutualTlsMode.Unset ? inherited : mode;

    /// <summary>Istio's rule: a selector selects a workload whose labels include all of its labels.</summary>
    private static bool Selects(IReadOnlyDictionary<string, string> selector, IReadOnlyDictionary<string, string> labels) =>
        selector.All(s => labels.TryGetValue(s.Key, out var value) && value == s.Value);
}
