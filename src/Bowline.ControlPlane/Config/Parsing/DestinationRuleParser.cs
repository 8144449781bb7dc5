namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>Istio <c>DestinationRule</c>: the host, its traffic policy and subsets, validated with Istio's rules.</summary>
internal static class DestinationRuleParser
{
    public static MeshResource? Parse(ResourceMeta meta, FieldReader spec)
    {
        var before = spec.ErrorCount;
        var host = spec.String("host", required: true);
        if (host is not null && IstioRules.WildcardDomain(host) is { } hostProblem)
        {
            spec.Error("host", hostProblem);
        }
        var policy = TrafficPolicyParser.Parse(spec.Map("trafficPolicy"));
        var subsets = new List<Subset>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var subset in spec.MapList("subsets"))
        {
            var name = subset.String("name", required: true);
            var labels = subset.StringMap("labels");
            var subsetPolicy = TrafficPolicyParser.Parse(subset.Map("trafficPolicy"));
            subset.Finish();
            if (name is null)
            {
                continue;
            }
            if (!IstioRules.IsDns1123Label(name))
            {
                subset.Error("name", name.Length == 0 ? "a subset name cannot be empty" : $"'{name}' is not a valid subset name (a DNS label: letters, digits and '-')");
                continue;
            }
            if (IstioRules.Labels(labels) is { } labelProblem)
            {
                subset.Error("labels", labelProblem);
                continue;
            }
            if (!names.Add(name))
            {
                subset.Error("name", $"subset '{name}' is defined twice");
                continue;
            }
            subsets.Add(new Subset(name, labels, subsetPolicy));
        }
        var exportTo = spec.StringList("exportTo");
        if (IstioRules.ExportTo(exportTo, meta.Namespace, serviceEntry: false) is { } exportProblem)
        {
            spec.Error("exportTo", exportProblem);
        }
        spec.Unsupported("workloadSelector", "workloadSelector");
        return host is null || spec.ErrorCount != before ? null : new DestinationRule(meta, host, subsets, policy) { ExportTo = exportTo };
    }
}
