namespace Bowline.ControlPlane.Config;

/// <summary>Istio's <c>StringMatch</c>: exactly one of exact, prefix or regex (RE2 syntax; .NET's engine is used, anchored like Envoy).</summary>
internal sealed record StringMatch(string Kind, string Value)
{
    public const string Exact = "exact";
    public const string Prefix = "prefix";
    public const string Regex = "regex";
}

/// <summary>One <c>HTTPMatchRequest</c>; every condition present must hold.</summary>
/// <param name="Headers">Header name (lower case) to its match; a null match means "present with any value" (Istio's <c>{}</c>).</param>
internal sealed record HttpMatch(
    string? Name,
    StringMatch? Uri,
    StringMatch? Method,
    IReadOnlyDictionary<string, StringMatch?> Headers,
    IReadOnlyList<string> Gateways,
    int? Port)
{
    public StringMatch? Scheme { get; init; }

    public StringMatch? Authority { get; init; }

    /// <summary>Headers that must not match (Envoy's invert_match); a null match means "absent".</summary>
    public IReadOnlyDictionary<string, StringMatch?> WithoutHeaders { get; init; } = new Dictionary<string, StringMatch?>();

    /// <summary>Query parameter name to its match; a null match means "present".</summary>
    public IReadOnlyDictionary<string, StringMatch?> QueryParams { get; init; } = new Dictionary<string, StringMatch?>();

    public bool IgnoreUriCase { get; init; }

    /// <summary>Labels the client workload must carry; the route exists only in the config of proxies that match.</summary>
    public IReadOnlyDictionary<string, string> SourceLabels { get; init; } = new Dictionary<string, string>();

    public string? SourceNamespace { get; init; }

    public string? StatPrefix { get; init; }
}

/// <summary>One weighted <c>HTTPRouteDestination</c>.</summary>
/// <param name="Weight">A proportion, not a percentage: Istio accepts any non-negative weights.</param>
internal sealed record RouteDestination(string Host, string? Subset, int? Port, int Weight)
{
    /// <summary>Header operations applied only when this destination is chosen.</summary>
    public HeaderOperations? Headers { get; init; }
}

/// <summary>One <c>HTTPRoute</c> of a VirtualService.</summary>
/// <param name="Timeout">Null: Istio's default, no timeout.</param>
internal sealed record HttpRoute(string? Name, IReadOnlyList<HttpMatch> Matches, IReadOnlyList<RouteDestination> Destinations, TimeSpan? Timeout)
{
    /// <summary>Null: Istio's default retry policy applies. <see cref="HttpRetry.Attempts"/> 0: no retries.</summary>
    public HttpRetry? Retries { get; init; }

    public HttpRedirect? Redirect { get; init; }

    public HttpDirectResponse? DirectResponse { get; init; }

    public HttpRewrite? Rewrite { get; init; }

    public HeaderOperations? Headers { get; init; }

    public HttpFault? Fault { get; init; }

    /// <summary>Every mirror (<c>mirror</c> or <c>mirrors</c>), each with its share of requests.</summary>
    public IReadOnlyList<HttpMirror> Mirrors { get; init; } = [];

    public CorsPolicy? Cors { get; init; }

    /// <summary>A root route's delegate VirtualService, whose routes replace this one (matches merged).</summary>
    public DelegateReference? Delegate { get; init; }
}

/// <summary>
/// Istio's <c>L4MatchAttributes</c> (a <c>tcp</c> route's match) and <c>TLSMatchAttributes</c> (a <c>tls</c> route's,
/// which adds <see cref="SniHosts"/>); every condition present must hold.
/// </summary>
internal sealed record L4Match(int? Port, IReadOnlyList<string> Gateways, IReadOnlyList<string> DestinationSubnets, IReadOnlyDictionary<string, string> SourceLabels, string? SourceNamespace)
{
    /// <summary>The server names (ClientHello SNI) a <c>tls</c> route's match selects; empty on a <c>tcp</c> route.</summary>
    public IReadOnlyList<string> SniHosts { get; init; } = [];
}

/// <summary>One <c>TCPRoute</c> or <c>TLSRoute</c>: matches OR-ed (none: every connection), then weighted destinations.</summary>
internal sealed record L4Route(IReadOnlyList<L4Match> Matches, IReadOnlyList<RouteDestination> Destinations);

/// <summary>An Istio <c>networking.istio.io/v1 VirtualService</c>.</summary>
/// <remarks>A VirtualService without hosts is a delegate: it only applies when a root VirtualService's route delegates to it.</remarks>
internal sealed record VirtualService(ResourceMeta Meta, IReadOnlyList<string> Hosts, IReadOnlyList<string> Gateways, IReadOnlyList<HttpRoute> Http)
    : MeshResource(Meta)
{
    /// <summary>Istio's rule: with no gateways listed, a VirtualService applies to sidecars only (the reserved gateway <c>mesh</c>).</summary>
    public bool AppliesToMesh => Gateways.Count == 0 || Gateways.Contains("mesh");

    public IReadOnlyList<string> ExportTo { get; init; } = [];

    /// <summary>Opaque TCP routes, first matching wins (a gateway's TCP servers, TLS servers that terminate).</summary>
    public IReadOnlyList<L4Route> Tcp { get; init; } = [];

    /// <summary>TLS routes by SNI, for connections whose TLS passes through unterminated (a gateway's PASSTHROUGH servers).</summary>
    public IReadOnlyList<L4Route> Tls { get; init; } = [];

    public bool IsDelegate => Hosts.Count == 0;
}

/// <summary>A named subset of a service's endpoints, selected by labels.</summary>
internal sealed record Subset(string Name, IReadOnlyDictionary<string, string> Labels, TrafficPolicy? Policy)
{
    /// <summary>The subset's own simple load balancer, if its traffic policy names one.</summary>
    public string? LoadBalancer => Policy?.LoadBalancer?.Simple;
}

/// <summary>An Istio <c>networking.istio.io/v1 DestinationRule</c>.</summary>
internal sealed record DestinationRule(ResourceMeta Meta, string Host, IReadOnlyList<Subset> Subsets, TrafficPolicy? Policy) : MeshResource(Meta)
{
    /// <summary>trafficPolicy.loadBalancer.simple: ROUND_ROBIN, LEAST_REQUEST (Istio's default), RANDOM, PASSTHROUGH.</summary>
    public string? LoadBalancer => Policy?.LoadBalancer?.Simple;

    public IReadOnlyList<string> ExportTo { get; init; } = [];
}

/// <summary>One server of a Gateway: a port and the hosts it exposes.</summary>
internal sealed record GatewayServer(int Port, string PortName, string Protocol, IReadOnlyList<string> Hosts)
{
    /// <summary>Null for a plain server; on an HTTPS server, how TLS is terminated; on an HTTP server, only httpsRedirect.</summary>
    public ServerTlsSettings? Tls { get; init; }

    /// <summary>The server's optional <c>name</c>: the stat prefix of its HTTPS filter chain, as in Istio.</summary>
    public string? Name { get; init; }

    /// <summary>Whether the gateway terminates TLS for this server (an HTTPS server, or a TLS server with tcp routes).</summary>
    public bool TerminatesTls => Tls?.Terminates == true;

    /// <summary>What the gateway does with this server's connections, from its protocol and TLS mode as Istio decides it.</summary>
    public GatewayServerKind Kind => Protocol switch
    {
        "HTTP" or "HTTP2" or "GRPC" => GatewayServerKind.Http,
        "HTTPS" or "TLS" when Tls?.Mode == ServerTlsMode.AutoPassthrough => GatewayServerKind.AutoPassthrough,
        "HTTPS" or "TLS" when !TerminatesTls => GatewayServerKind.Passthrough,
        "HTTPS" => GatewayServerKind.Https,
        "TLS" => GatewayServerKind.TerminatedTcp,
        _ => GatewayServerKind.Tcp,
    };
}

/// <summary>How a gateway serves one server (Istio's gateway listener builder makes the same cut).</summary>
internal enum GatewayServerKind
{
    /// <summary>Plain HTTP, HTTP/2 or gRPC: routed by the VirtualServices' http routes.</summary>
    Http,

    /// <summary>TLS terminated, then HTTP routed by http routes.</summary>
    Https,

    /// <summary>Opaque TCP (TCP, MONGO, MYSQL, REDIS): forwarded by the first matching tcp route.</summary>
    Tcp,

    /// <summary>Protocol TLS with a terminating mode: TLS terminated, then forwarded by a tcp route.</summary>
    TerminatedTcp,

    /// <summary>TLS passed through unterminated, forwarded by the tls route whose sniHosts name the ClientHello's SNI.</summary>
    Passthrough,

    /// <summary>TLS passed through to the cluster its SNI names (<c>outbound_.port_.subset_.host</c>): east-west mTLS.</summary>
    AutoPassthrough,
}

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
