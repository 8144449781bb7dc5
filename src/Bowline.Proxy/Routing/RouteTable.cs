namespace Bowline.Proxy.Routing;

/// <summary>A compiled virtual host: its routes in order, first match wins, and its per-filter overrides.</summary>
internal sealed class VirtualHostEntry(string name, RouteEntry[] routes, IReadOnlyDictionary<string, PerFilterConfig>? filterConfigs)
{
    public string Name { get; } = name;

    public RouteEntry[] Routes { get; } = routes;

    public IReadOnlyDictionary<string, PerFilterConfig>? FilterConfigs { get; } = filterConfigs;
}

/// <summary>
/// A compiled Envoy <c>RouteConfiguration</c>: virtual hosts by domain with Envoy's precedence — exact, then the longest
/// suffix wildcard (<c>*.example.com</c>), then the longest prefix wildcard (<c>example.*</c>), then <c>*</c>.
/// </summary>
internal sealed class RouteTable
{
    private readonly Dictionary<string, VirtualHostEntry> _exact;
    private readonly (string Suffix, VirtualHostEntry Host)[] _suffixes;
    private readonly (string Prefix, VirtualHostEntry Host)[] _prefixes;
    private readonly VirtualHostEntry? _default;
    private readonly VirtualHostEntry[] _all;

    public RouteTable(string name, IReadOnlyList<(IReadOnlyList<string> Domains, VirtualHostEntry Host)> hosts, Envoy.Config.Route.V3.RouteConfiguration? source = null)
    {
        Name = name;
        Source = source;
        _exact = new Dictionary<string, VirtualHostEntry>(StringComparer.OrdinalIgnoreCase);
        var suffixes = new List<(string, VirtualHostEntry)>();
        var prefixes = new List<(string, VirtualHostEntry)>();
        _all = [.. hosts.Select(h => h.Host)];
        foreach (var (domains, host) in hosts)
        {
            foreach (var domain in domains)
            {
                if (domain == "*")
                {
                    _default ??= host;
                }
                else if (domain.StartsWith('*'))
                {
                    suffixes.Add((domain[1..], host));
                }
                else if (domain.EndsWith('*'))
                {
                    prefixes.Add((domain[..^1], host));
                }
                else if (!_exact.TryAdd(domain, host))
                {
                    throw new Configuration.ProxyConfigException($"route configuration {name}: domain {domain} is listed by virtual hosts {_exact[domain].Name} and {host.Name}; Envoy requires each domain once");
                }
            }
        }
        _suffixes = [.. suffixes.OrderByDescending(s => s.Item1.Length)];
        _prefixes = [.. prefixes.OrderByDescending(p => p.Item1.Length)];
    }

    public string Name { get; }

    /// <summary>The RDS resource this was compiled from; an identical resource in a later update reuses the table.</summary>
    public Envoy.Config.Route.V3.RouteConfiguration? Source { get; }

    /// <summary>Every cluster a route of this table may send to (targets and mirrors), for handle pruning.</summary>
    public IEnumerable<string> ClusterNames => _all.SelectMany(h => h.Routes).SelectMany(r => (r.Action?.Targets.Select(t => t.ClusterName) ?? []).Concat(r.Action?.Mirrors.Select(m => m.Cluster.Name) ?? []));

    public VirtualHostEntry? FindVirtualHost(string host)
    {
        if (_exact.TryGetValue(host, out var exact))
        {
            return exact;
        }
        foreach (var (suffix, entry) in _suffixes)
        {
            if (host.Length > suffix.Length && host.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                return entry;
            }
        }
        foreach (var (prefix, entry) in _prefixes)
        {
            if (host.Length > prefix.Length && host.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                return entry;
            }
        }
        return _default;
    }
}
