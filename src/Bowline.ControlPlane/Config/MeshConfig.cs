namespace Bowline.ControlPlane.Config;

/// <summary>
/// An immutable, validated set of every config object the control plane serves from. A new instance is built for every
/// accepted change; readers hold on to the one they started with.
/// </summary>
internal sealed class MeshConfig
{
    public static readonly MeshConfig Empty = new([], 0);

    public MeshConfig(IReadOnlyList<MeshResource> resources, long generation)
    {
        Generation = generation;
        Resources = resources;
        Services = resources.OfType<KubernetesService>().ToList();
        ServiceEntries = resources.OfType<ServiceEntry>().ToList();
        WorkloadEntries = resources.OfType<WorkloadEntry>().ToList();
        VirtualServices = resources.OfType<VirtualService>().ToList();
        DestinationRules = resources.OfType<DestinationRule>().ToList();
        Gateways = resources.OfType<Gateway>().ToList();
        Workloads = resources.OfType<Workload>().ToList();
        HealthChecks = resources.OfType<HealthCheck>().OrderBy(r => r.Meta.Namespace, StringComparer.Ordinal).ThenBy(r => r.Meta.Name, StringComparer.Ordinal).ToList();
        RateLimits = resources.OfType<RateLimit>().OrderBy(r => r.Meta.Namespace, StringComparer.Ordinal).ThenBy(r => r.Meta.Name, StringComparer.Ordinal).ToList();
    }

    /// <summary>Increases with every accepted change; shows in logs and the CLI.</summary>
    public long Generation { get; }

    public IReadOnlyList<MeshResource> Resources { get; }

    public IReadOnlyList<KubernetesService> Services { get; }

    public IReadOnlyList<ServiceEntry> ServiceEntries { get; }

    public IReadOnlyList<WorkloadEntry> WorkloadEntries { get; }

    public IReadOnlyList<VirtualService> VirtualServices { get; }

    public IReadOnlyList<DestinationRule> DestinationRules { get; }

    public IReadOnlyList<Gateway> Gateways { get; }

    public IReadOnlyList<Workload> Workloads { get; }

    /// <summary>Ordered by namespace and name: where two apply to the same cluster or route, the first wins.</summary>
    public IReadOnlyList<HealthCheck> HealthChecks { get; }

    /// <summary>Ordered by namespace and name: where two select the same route, the first wins.</summary>
    public IReadOnlyList<RateLimit> RateLimits { get; }
}
