namespace Bowline.ControlPlane.Config;

/// <summary>Istio's <c>StringMatch</c>: exactly one of exact, prefix or regex (RE2 syntax; .NET's engine is used, anchored like Envoy).</summary>
internal sealed record StringMatch(string Kind, string Value)
{
    public const string Exact = "exact";
    public const string Prefix = "prefix";
    public const string Regex = "regex";
}

/// <summary>One <c>HTTPMatchRequest</c>; every condition present must hold.</summary>
internal sealed record HttpMatch(
    string? Name,
    StringMatch? Uri,
    StringMatch? Method,
    IReadOnlyDictionary<string, StringMatch> Headers,
    IReadOnlyList<string> Gateways,
    int? Port);

/// <summary>One weighted <c>HTTPRouteDestination</c>.</summary>
internal sealed record RouteDestination(string Host, string? Subset, int? Port, int Weight);

/// <summary>One <c>HTTPRoute</c> of a VirtualService.</summary>
/// <param name="Timeout">Null: Istio's default, no timeout.</param>
internal sealed record HttpRoute(string? Name, IReadOnlyList<HttpMatch> Matches, IReadOnlyList<RouteDestination> Destinations, TimeSpan? Timeout);

/// <summary>An Istio <c>networking.istio.io/v1 VirtualService</c>.</summary>
internal sealed record VirtualService(ResourceMeta Meta, IReadOnlyList<string> Hosts, IReadOnlyList<string> Gateways, IReadOnlyList<HttpRoute> Http)
    : MeshResource(Meta)
{
    /// <summary>Istio's rule: with no gateways listed, a VirtualService applies to sidecars only (the reserved gateway <c>mesh</c>).</summary>
    public bool AppliesToMesh => Gateways.Count == 0 || Gateways.Contains("mesh");
}

/// <summary>A named subset of a service's endpoints, selected by labels.</summary>
internal sealed record Subset(string Name, IReadOnlyDictionary<string, string> Labels, string? LoadBalancer);

/// <summary>An Istio <c>networking.istio.io/v1 DestinationRule</c>.</summary>
/// <param name="LoadBalancer">trafficPolicy.loadBalancer.simple: ROUND_ROBIN, LEAST_REQUEST (Istio's default), RANDOM, PASSTHROUGH.</param>
internal sealed record DestinationRule(ResourceMeta Meta, string Host, IReadOnlyList<Subset> Subsets, string? LoadBalancer) : MeshResource(Meta);

/// <summary>One server of a Gateway: a port and the hosts it exposes.</summary>
internal sealed record GatewayServer(int Port, string PortName, string Protocol, IReadOnlyList<string> Hosts);

/// <summary>An Istio <c>networking.istio.io/v1 Gateway</c>.</summary>
internal sealed record Gateway(ResourceMeta Meta, IReadOnlyDictionary<string, string> Selector, IReadOnlyList<GatewayServer> Servers) : MeshResource(Meta);

/// <summary>An environment variable of a Workload.</summary>
internal sealed record WorkloadEnv(string Name, string Value);

/// <summary>
/// Bowline's <c>bowline.io/v1alpha1 Workload</c>: a process that <c>bowline up</c> runs beside its sidecar, shaped like a pod
/// template (labels, service account, container ports). Either <see cref="Project"/> (a .NET project that <c>bowline up</c>
/// builds and runs) or <see cref="Command"/> (any executable) says what to run.
/// </summary>
internal sealed record Workload(
    ResourceMeta Meta,
    string? ServiceAccount,
    string? Project,
    IReadOnlyList<string> Command,
    IReadOnlyList<string> Args,
    IReadOnlyList<WorkloadEnv> Env,
    IReadOnlyList<int> ContainerPorts,
    string? WorkingDir) : MeshResource(Meta);
