using System.Globalization;

namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>
/// Istio <c>PeerAuthentication</c> with Istio's rules (pkg/config/validation ValidatePeerAuthentication and the CRD's
/// schema): a selector's labels have non-empty keys and no wildcards, a mode is UNSET, DISABLE, PERMISSIVE or STRICT,
/// and <c>portLevelMtls</c>, never empty, needs a selector and names ports 1-65535.
/// </summary>
internal static class PeerAuthenticationParser
{
    /// <summary>The CRD's limits on <c>selector.matchLabels</c>.</summary>

    public static MeshResource? Parse(ResourceMeta meta, FieldReader spec)
    {
        var before = spec.ErrorCount;
        var selector = Selector(spec, meta);
        var mode = MutualTlsMode.Unset;
        if (spec.Map("mtls") is { } mtls)
        {
            mode = Mode(mtls);
            mtls.Finish();
        }
        var ports = new Dictionary<int, MutualTlsMode>();
        var entries = spec.Entries("portLevelMtls", (reader, _) => reader);
        foreach (var (key, value) in entries)
        {
            if (!long.TryParse(key, NumberStyles.Integer, CultureInfo.InvariantCulture, out var number))
            {
                spec.ErrorAt($"spec.portLevelMtls.{key}", $"'{key}' is not a port number; portLevelMtls is keyed by the workload's port (\"8080\": {{mode: STRICT}})");
                continue;
            }
            if (number is < 1 or > 65535)
            {
                spec.ErrorAt($"spec.portLevelMtls.{key}", $"port {key} is out of range; a port must be between 1 and 65535");
                continue;
            }
            var port = (int)number;
            var portMode = MutualTlsMode.Unset;
            if (value is not null)
            {
                portMode = Mode(value);
                value.Finish();
            }
            ports[port] = portMode;
        }
        if (spec.IsEmptyMap("portLevelMtls"))
        {
            spec.Error("portLevelMtls", "portLevelMtls, if given, must name at least one port; remove it or add \"<port>\": {mode: ...}");
        }
        else if (entries.Count > 0 && selector.Count == 0)
        {
            spec.Error("portLevelMtls", "portLevelMtls requires a selector with matchLabels: a namespace-wide or mesh-wide PeerAuthentication cannot set port-level modes; select the workloads whose ports these are");
        }
        return spec.ErrorCount == before ? new PeerAuthentication(meta, selector, mode, ports) : null;
    }

    private static IReadOnlyDictionary<string, string> Selector(FieldReader spec, ResourceMeta meta)
    {
        var labels = PolicySelectorParser.Selector(spec);
        if (labels.Count > 0 && meta.Namespace == MeshSecurity.RootNamespace)
        {
            // Istio's ComposePeerAuthentication skips selector policies in the root namespace.
            spec.Warning("selector", $"a PeerAuthentication with a selector in the root namespace {MeshSecurity.RootNamespace} has no effect (as in Istio, a policy there applies mesh-wide only without a selector); put it in the namespace of the workloads it selects");
        }
        return labels;
    }

    private static MutualTlsMode Mode(FieldReader reader)
    {
        var mode = reader.String("mode");
        switch (mode)
        {
            case null or "UNSET":
                return MutualTlsMode.Unset;
            case "DISABLE":
                return MutualTlsMode.Disable;
            case "PERMISSIVE":
                return MutualTlsMode.Permissive;
            case "STRICT":
                return MutualTlsMode.Strict;
            default:
                reader.Error("mode", $"'{mode}' must be UNSET, DISABLE, PERMISSIVE or STRICT");
                return MutualTlsMode.Unset;
        }
    }
}
