using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Snapshots;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// Istio's VirtualService delegation: a root route with <c>delegate</c> is replaced by the delegate VirtualService's
/// routes, each delegate match narrowed by the root's matches (a delegate match that no root match contains is
/// dropped), and root route settings filling what the delegate route leaves unset.
/// </summary>
internal static class DelegateResolver
{
    /// <summary>The routes of <paramref name="vs"/> in order, delegates expanded; each with the VirtualService whose namespace its hosts resolve in, and its route name.</summary>
    public static IEnumerable<(HttpRoute Route, VirtualService Owner, string Name)> Flatten(ServiceIndex index, VirtualService vs, SnapshotBuilder snapshot)
    {
        for (var i = 0; i < vs.Http.Count; i++)
        {
            var http = vs.Http[i];
            var name = http.Name ?? $"{vs.Meta.Name}.{i}";
            if (http.Delegate is not { } reference)
            {
                yield return (http, vs, name);
                continue;
            }
            var ns = reference.Namespace ?? vs.Meta.Namespace;
            var target = index.Config.VirtualServices.FirstOrDefault(v => v.Meta.Name == reference.Name && v.Meta.Namespace == ns);
            if (target is null || !target.IsDelegate)
            {
                snapshot.Warn($"{vs.Meta} ({vs.Meta.File}): delegate {ns}/{reference.Name} {(target is null ? "does not exist" : "has hosts, so it is not a delegate")}; requests this route matches fall through to later routes");
                continue;
            }
            if (!Exported(target, vs.Meta.Namespace))
            {
                snapshot.Warn($"{vs.Meta} ({vs.Meta.File}): delegate {target.Meta} is not exported to namespace {vs.Meta.Namespace}; add it to the delegate's exportTo");
                continue;
            }
            for (var j = 0; j < target.Http.Count; j++)
            {
                var leaf = target.Http[j];
                if (Merge(Qualified(http, vs.Meta.Namespace), Qualified(leaf, target.Meta.Namespace)) is { } merged)
                {
                    yield return (merged, target, merged.Name ?? $"{target.Meta.Name}.{j}");
                }
                else
                {
                    snapshot.Warn($"{target.Meta} ({target.Meta.File}): route {leaf.Name ?? j.ToString(System.Globalization.CultureInfo.InvariantCulture)} has a match no match of its root route {vs.Meta} contains; it is ignored");
                }
            }
        }
    }

    private static bool Exported(VirtualService vs, string toNamespace) =>
        vs.ExportTo.Count == 0 || vs.ExportTo.Contains("*") || vs.ExportTo.Contains(toNamespace) || (vs.ExportTo.Contains(".") && vs.Meta.Namespace == toNamespace);

    /// <summary>Gateway names in <c>namespace/name</c> form, so they keep their meaning once merged across namespaces.</summary>
    private static HttpRoute Qualified(HttpRoute route, string ns) => route with
    {
        Matches = route.Matches.Select(m => m with
        {
            Gateways = m.Gateways.Select(g => g == "mesh" || g.Contains('/', StringComparison.Ordinal) ? g : $"{ns}/{g}").ToList(),
        }).ToList(),
    };

    private static HttpRoute? Merge(HttpRoute root, HttpRoute leaf)
    {
        var matches = MergeMatches(root.Matches, leaf.Matches);
        if (matches is null)
        {
            return null;
        }
        var name = leaf.Name is null ? root.Name : root.Name is null ? leaf.Name : $"{root.Name}-{leaf.Name}";
        return leaf with
        {
            Name = name,
            Matches = matches,
            Rewrite = leaf.Rewrite ?? root.Rewrite,
            DirectResponse = leaf.DirectResponse ?? root.DirectResponse,
            Timeout = leaf.Timeout ?? root.Timeout,
            Retries = leaf.Retries ?? root.Retries,
            Fault = leaf.Fault ?? root.Fault,
            Mirrors = leaf.Mirrors.Count > 0 ? leaf.Mirrors : root.Mirrors,
            Cors = leaf.Cors ?? root.Cors,
            Headers = leaf.Headers ?? root.Headers,
        };
    }

    /// <summary>Each delegate match is combined with every root match it does not conflict with; one that fits none is a conflict.</summary>
    private static List<HttpMatch>? MergeMatches(IReadOnlyList<HttpMatch> root, IReadOnlyList<HttpMatch> leaf)
    {
        if (root.Count == 0)
        {
            return leaf.ToList();
        }
        if (leaf.Count == 0)
        {
            return root.ToList();
        }
        var result = new List<HttpMatch>();
        foreach (var sub in leaf)
        {
            var found = false;
            foreach (var parent in root.Where(parent => !Conflicts(parent, sub)))
            {
                result.Add(MergeMatch(parent, sub));
                found = true;
            }
            if (!found)
            {
                return null;
            }
        }
        return result.Count == 0 ? null : result;
    }

    private static HttpMatch MergeMatch(HttpMatch root, HttpMatch leaf) => leaf with
    {
        Name = leaf.Name is null ? root.Name : root.Name is null ? leaf.Name : $"{root.Name}-{leaf.Name}",
        Uri = leaf.Uri ?? root.Uri,
        Scheme = leaf.Scheme ?? root.Scheme,
        Method = leaf.Method ?? root.Method,
        Authority = leaf.Authority ?? root.Authority,
        Headers = MergeMaps(root.Headers, leaf.Headers),
        WithoutHeaders = MergeMaps(root.WithoutHeaders, leaf.WithoutHeaders),
        QueryParams = MergeMaps(root.QueryParams, leaf.QueryParams),
        Port = leaf.Port ?? root.Port,
        SourceLabels = MergeMaps(root.SourceLabels, leaf.SourceLabels),
        SourceNamespace = leaf.SourceNamespace ?? root.SourceNamespace,
        Gateways = leaf.Gateways.Count > 0 ? leaf.Gateways : root.Gateways,
        StatPrefix = leaf.StatPrefix ?? root.StatPrefix,
    };

    private static Dictionary<string, T> MergeMaps<T>(IReadOnlyDictionary<string, T> root, IReadOnlyDictionary<string, T> leaf)
    {
        var result = new Dictionary<string, T>(StringComparer.OrdinalIgnoreCase);
        foreach (var (k, v) in root)
        {
            result[k] = v;
        }
        foreach (var (k, v) in leaf)
        {
            result[k] = v;
        }
        return result;
    }

    /// <summary>Istio's conflict test: the delegate match must be at least as narrow as the root's on every condition both set.</summary>
    private static bool Conflicts(HttpMatch root, HttpMatch leaf)
    {
        if (StringConflict(root.Uri, leaf.Uri) || StringConflict(root.Scheme, leaf.Scheme) || StringConflict(root.Method, leaf.Method) || StringConflict(root.Authority, leaf.Authority))
        {
            return true;
        }
        if (leaf.Headers.Any(h => root.Headers.TryGetValue(h.Key, out var r) && StringConflict(r, h.Value))
            || leaf.WithoutHeaders.Any(h => root.WithoutHeaders.TryGetValue(h.Key, out var r) && StringConflict(r, h.Value))
            || leaf.QueryParams.Any(q => root.QueryParams.TryGetValue(q.Key, out var r) && StringConflict(r, q.Value)))
        {
            return true;
        }
        if (root.IgnoreUriCase != leaf.IgnoreUriCase || (root.Port is { } rp && leaf.Port is { } lp && rp != lp))
        {
            return true;
        }
        if (root.SourceNamespace is { } ns && leaf.SourceNamespace != ns)
        {
            return true;
        }
        if (leaf.SourceLabels.Any(l => root.SourceLabels.TryGetValue(l.Key, out var v) && v != l.Value))
        {
            return true;
        }
        return root.Gateways.Count > 0 && leaf.Gateways.Count > 0 && leaf.Gateways.Any(g => !root.Gateways.Contains(g));
    }

    private static bool StringConflict(StringMatch? root, StringMatch? leaf)
    {
        if (root is null || leaf is null)
        {
            return false;
        }
        if (root.Kind == StringMatch.Regex || leaf.Kind == StringMatch.Regex)
        {
            return true;
        }
        if (root.Kind == StringMatch.Exact)
        {
            return leaf.Kind != StringMatch.Exact || leaf.Value != root.Value;
        }
        // Root prefix: the leaf must stay inside it.
        return !leaf.Value.StartsWith(root.Value, StringComparison.Ordinal);
    }
}
