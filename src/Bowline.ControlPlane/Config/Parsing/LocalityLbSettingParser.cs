namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>Reads a <c>loadBalancer.localityLbSetting</c> with Istio's validation (pkg/config/validation's ValidateLocalityLbSetting).</summary>
internal static class LocalityLbSettingParser
{
    /// <summary>The topology labels that <c>failover</c> already orders by; failoverPriority may not name them beside it.</summary>
    private static readonly string[] TopologyLabels = ["topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone"];

    /// <param name="hasOutlier">Whether the same traffic policy has outlierDetection, without which failover never happens.</param>
    public static LocalityLbSetting? Parse(FieldReader? locality, bool hasOutlier)
    {
        if (locality is null)
        {
            return null;
        }
        var enabled = locality.Bool("enabled") ?? true;
        var failover = new List<LocalityFailover>();
        var failoverEntries = locality.MapList("failover");
        foreach (var entry in failoverEntries)
        {
            var from = entry.String("from") ?? string.Empty;
            var to = entry.String("to") ?? string.Empty;
            entry.Finish();
            if (from == to)
            {
                entry.Error($"failover from '{from}' to '{to}': a failover must name two different regions");
            }
            else if (from.Contains('/', StringComparison.Ordinal) || to.Contains('/', StringComparison.Ordinal))
            {
                entry.Error($"failover from '{from}' to '{to}': failover names regions only (no zone or subzone)");
            }
            else if (from.Contains('*', StringComparison.Ordinal) || to.Contains('*', StringComparison.Ordinal))
            {
                entry.Error($"failover from '{from}' to '{to}': a failover region cannot contain the '*' wildcard");
            }
            else
            {
                failover.Add(new LocalityFailover(from, to));
            }
        }
        var failoverPriority = locality.StringList("failoverPriority");
        var distributeEntries = locality.MapList("distribute");
        var distribute = distributeEntries.Select(Distribute).OfType<LocalityDistribute>().ToList();
        locality.Finish();

        if (distributeEntries.Count > 0 && failoverEntries.Count > 0)
        {
            locality.Error("distribute", "distribute and failover cannot be set together; give one of them");
        }
        if (failoverEntries.Count > 0 && failoverPriority.Count > 0 && failoverPriority.FirstOrDefault(p => TopologyLabels.Contains(p.Split('=', 2)[0], StringComparer.Ordinal)) is { } topology)
        {
            locality.Error("failoverPriority", $"failover and the topology label '{topology}' in failoverPriority cannot be set together (failover already orders by region); remove one");
        }
        if ((failover.Count > 0 || failoverPriority.Count > 0) && !hasOutlier)
        {
            locality.Warning(failover.Count > 0 ? "failover" : "failoverPriority", "failover needs an outlierDetection policy to take effect; add trafficPolicy.outlierDetection");
        }
        return new LocalityLbSetting(enabled, failover, failoverPriority, distribute);
    }

    /// <summary>Istio's rules for one distribute entry: weights 1-100 that total 100; a wildcard only as the last character.</summary>
    /// <returns>The entry, or null when it breaks a rule (the error is reported).</returns>
    private static LocalityDistribute? Distribute(FieldReader entry)
    {
        var before = entry.ErrorCount;
        var from = entry.String("from") ?? string.Empty;
        var to = entry.IntMap("to", int.MinValue, int.MaxValue);
        entry.Finish();
        if (LocalityProblem(from) is { } fromProblem)
        {
            entry.Error("from", fromProblem);
        }
        foreach (var (locality, weight) in to)
        {
            if (weight is < 1 or > 100)
            {
                entry.Error("to", $"the weight of '{locality}' is {weight}; locality weights must be in the range [1, 100]");
                return null;
            }
            if (LocalityProblem(locality) is { } toProblem)
            {
                entry.Error("to", toProblem);
                return null;
            }
        }
        if (to.Values.Sum() != 100)
        {
            entry.Error("to", $"the locality weights total {to.Values.Sum()}; they must total 100");
        }
        foreach (var (field, locality) in to.Keys.Select(k => ("to", k)).Prepend(("from", from)))
        {
            if (locality.Split('/').FirstOrDefault(p => p.Contains('*', StringComparison.Ordinal) && p != "*") is { } part)
            {
                entry.Warning(field, $"locality '{locality}': '*' stands only for a whole part, so (as in Istio) '{part}' matches no locality; write it as '*'");
            }
        }
        // The reader keeps the mapping in the order written.
        return entry.ErrorCount == before ? new LocalityDistribute(from, to.Select(t => new LocalityWeight(t.Key, (uint)t.Value)).ToList()) : null;
    }

    private static string? LocalityProblem(string locality)
    {
        var wildcards = locality.Count(c => c == '*');
        if (wildcards > 1 || (wildcards == 1 && !locality.EndsWith('*')))
        {
            return $"locality '{locality}': the '*' wildcard may appear once, at the end";
        }
        var parts = locality.Split('/');
        if (parts.Length > 3 || parts.Any(p => p.Length == 0))
        {
            return $"locality '{locality}' must be region, region/zone or region/zone/subzone with no empty part";
        }
        return null;
    }
}
