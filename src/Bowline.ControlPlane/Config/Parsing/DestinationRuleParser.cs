namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>Istio <c>DestinationRule</c>: subsets and, of the traffic policy, the simple load balancer.</summary>
internal static class DestinationRuleParser
{
    public static MeshResource? Parse(ResourceMeta meta, FieldReader spec)
    {
        var host = spec.String("host", required: true);
        var lb = ReadTrafficPolicy(spec.Map("trafficPolicy"));
        var subsets = new List<Subset>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var subset in spec.MapList("subsets"))
        {
            var name = subset.String("name", required: true);
            var labels = subset.StringMap("labels");
            var subsetLb = ReadTrafficPolicy(subset.Map("trafficPolicy"));
            subset.Finish();
            if (name is null)
            {
                continue;
            }
            if (!names.Add(name))
            {
                subset.Error("name", $"subset '{name}' is defined twice");
                continue;
            }
            subsets.Add(new Subset(name, labels, subsetLb));
        }
        spec.StringList("exportTo");
        spec.Unsupported("workloadSelector", "workloadSelector");
        return host is null ? null : new DestinationRule(meta, host, subsets, lb);
    }

    private static string? ReadTrafficPolicy(FieldReader? policy)
    {
        if (policy is null)
        {
            return null;
        }
        string? simple = null;
        if (policy.Map("loadBalancer") is { } lb)
        {
            simple = lb.String("simple");
            if (simple is not (null or "ROUND_ROBIN" or "LEAST_REQUEST" or "LEAST_CONN" or "RANDOM" or "UNSPECIFIED"))
            {
                lb.Error("simple", $"'{simple}' is not supported by Bowline yet; use ROUND_ROBIN, LEAST_REQUEST or RANDOM");
                simple = null;
            }
            lb.Unsupported("consistentHash", "consistent-hash load balancing");
            lb.Unsupported("localityLbSetting", "locality load balancing");
            lb.Unsupported("warmupDurationSecs", "slow start");
            lb.Unsupported("warmup", "slow start");
            lb.Finish();
        }
        policy.Unsupported("connectionPool", "connectionPool");
        policy.Unsupported("outlierDetection", "outlierDetection");
        policy.Unsupported("tls", "client TLS settings");
        policy.Unsupported("portLevelSettings", "portLevelSettings");
        policy.Unsupported("tunnel", "tunnel");
        policy.Unsupported("proxyProtocol", "proxyProtocol");
        policy.Finish();
        return simple switch { "LEAST_CONN" => "LEAST_REQUEST", "UNSPECIFIED" => null, _ => simple };
    }
}
