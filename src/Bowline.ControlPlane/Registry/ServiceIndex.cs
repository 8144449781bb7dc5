using Bowline.ControlPlane.Config;

namespace Bowline.ControlPlane.Registry;

/// <summary>
/// The service registry computed from one <see cref="MeshConfig"/>: services by host, their endpoints per port, and the
/// routing rules that apply to each. Immutable; built once per config generation and shared by every proxy's translation.
/// </summary>
internal sealed class ServiceIndex
{
    private readonly Dictionary<string, MeshService> _services = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DestinationRule> _destinationRules = new(StringComparer.Ordinal);
    private readonly List<string> _conflicts = [];
    private readonly ILookup<string, HealthCheck> _healthChecks;
    private readonly ILookup<string, RateLimit> _rateLimits;

    public ServiceIndex(MeshConfig config)
    {
        Config = config;
        foreach (var service in config.Services)
        {
            var host = $"{service.Meta.Name}.{service.Meta.Namespace}.{Names.ClusterDomain}";
            _services[host] = new MeshService(host, service.Meta.Name, service.Meta.Namespace, service.Ports, service.Selector, []);
        }
        foreach (var entry in config.ServiceEntries)
        {
            foreach (var host in entry.Hosts)
            {
                // A Kubernetes Service of the same name wins, as Istio resolves conflicts in favour of the platform registry.
                if (!_services.TryAdd(host, new MeshService(host, null, entry.Meta.Namespace, entry.Ports, entry.WorkloadSelector, entry.Endpoints)
                {
                    Resolution = entry.Resolution,
                    MeshExternal = entry.Location == "MESH_EXTERNAL",
                    SubjectAltNames = entry.SubjectAltNames,
                }))
                {
                    _conflicts.Add($"{entry.Meta} ({entry.Meta.File}): host {host} is already defined by another Service or ServiceEntry, which wins; this entry is ignored for it");
                }
            }
        }
        foreach (var rule in config.DestinationRules.OrderBy(r => r.Meta.Namespace, StringComparer.Ordinal).ThenBy(r => r.Meta.Name, StringComparer.Ordinal))
        {
            var host = Names.Qualify(rule.Host, rule.Meta.Namespace);
            if (!_destinationRules.TryAdd(host, rule))
            {
                _conflicts.Add($"{rule.Meta} ({rule.Meta.File}): host {host} already has {_destinationRules[host].Meta}, which applies; merge the two");
            }
        }
        Services = _services.Values.OrderBy(s => s.Hostname, StringComparer.Ordinal).ToList();
        // Config order (namespace, name) is kept within each host: the first that applies wins.
        _healthChecks = config.HealthChecks.ToLookup(c => Names.Qualify(c.Host, c.Meta.Namespace), StringComparer.Ordinal);
        _rateLimits = config.RateLimits.ToLookup(r => Names.Qualify(r.Host, r.Meta.Namespace), StringComparer.Ordinal);
    }

    public MeshConfig Config { get; }

    /// <summary>When this generation was published (a <see cref="TimeProvider"/> timestamp): the start of its convergence.</summary>
    public long PublishedAt { get; init; }

    /// <summary>Definitions that lost to another for the same host; reported as translation warnings.</summary>
    public IReadOnlyList<string> Conflicts => _conflicts;

    /// <summary>Every service, ordered by host name so output is stable.</summary>
    public IReadOnlyList<MeshService> Services { get; }

    public MeshService? FindService(string hostname) => _services.GetValueOrDefault(hostname);

    public DestinationRule? FindDestinationRule(string hostname) => _destinationRules.GetValueOrDefault(hostname);

    /// <summary>The HealthChecks naming this host, in config order.</summary>
    public IEnumerable<HealthCheck> HealthChecksFor(string hostname) => _healthChecks[hostname];

    /// <summary>The RateLimits naming this host, in config order.</summary>
    public IEnumerable<RateLimit> RateLimitsFor(string hostname) => _rateLimits[hostname];

    /// <summary>The endpoints of <paramref name="port"/> of <paramref name="service"/> whose labels include <paramref name="subsetLabels"/>.</summary>
    public IReadOnlyList<MeshEndpoint> Endpoints(MeshService service, ServicePort port, IReadOnlyDictionary<string, string>? subsetLabels)
    {
        var result = new List<MeshEndpoint>();
        if (service.ResolvesDns && service.InlineEndpoints.Count == 0 && subsetLabels is not { Count: > 0 })
        {
            // Istio's rule: a DNS ServiceEntry without endpoints resolves its host name itself.
            result.Add(new MeshEndpoint(service.Hostname, port.TargetPort ?? port.Number, new Dictionary<string, string>(), 1));
        }
        foreach (var endpoint in service.InlineEndpoints)
        {
            if (Matches(endpoint.Labels, subsetLabels))
            {
                result.Add(new MeshEndpoint(endpoint.Address, ResolvePort(endpoint.Ports, port), endpoint.Labels, endpoint.Weight)
                {
                    Locality = MeshLocality.Parse(endpoint.Locality),
                    Namespace = service.Namespace,
                    ServiceAccount = endpoint.ServiceAccount,
                    TlsMode = MeshEndpoint.TlsModeOf(endpoint.Labels, endpoint.ServiceAccount),
                });
            }
        }
        if (service.Selector is { Count: > 0 } selector)
        {
            foreach (var entry in Config.WorkloadEntries)
            {
                if (entry.Meta.Namespace == service.Namespace && Matches(entry.WorkloadLabels, selector) && Matches(entry.WorkloadLabels, subsetLabels))
                {
                    result.Add(new MeshEndpoint(entry.Address, ResolvePort(entry.Ports, port), entry.WorkloadLabels, entry.Weight)
                    {
                        Locality = MeshLocality.Parse(entry.Locality),
                        Namespace = entry.Meta.Namespace,
                        ServiceAccount = entry.ServiceAccount,
                        TlsMode = MeshEndpoint.TlsModeOf(entry.WorkloadLabels, entry.ServiceAccount),
                        WorkloadName = entry.WorkloadLabels.GetValueOrDefault("service.istio.io/workload-name") ?? entry.Meta.Name,
                    });
                }
            }
        }
        result.Sort((a, b) => (a.Address, a.Port).CompareTo((b.Address, b.Port)));
        return result;
    }

    /// <summary>Istio's rule: a WorkloadEntry's port for a service port is looked up by the port's name, else the target port, else the port itself.</summary>
    private static int ResolvePort(IReadOnlyDictionary<string, int> ports, ServicePort port) =>
        ports.TryGetValue(port.Name, out var p) ? p : port.TargetPort ?? port.Number;

    /// <summary>Whether <paramref name="labels"/> include every label of <paramref name="selector"/>; a null or empty selector matches all.</summary>
    public static bool Matches(IReadOnlyDictionary<string, string> labels, IReadOnlyDictionary<string, string>? selector)
    {
        if (selector is null)
        {
            return true;
        }
        foreach (var (key, value) in selector)
        {
            if (!labels.TryGetValue(key, out var actual) || actual != value)
            {
                return false;
            }
        }
        return true;
    }
}
