namespace Bowline.ControlPlane.Config;

/// <summary>A port of a Kubernetes Service or an Istio ServiceEntry.</summary>
/// <param name="Number">The port clients dial (the service port).</param>
/// <param name="Name">The port name; Istio derives the protocol from its prefix (<c>http</c>, <c>grpc</c>, <c>http2</c>, <c>tcp</c>).</param>
/// <param name="TargetPort">The port on the workload, when it differs from <paramref name="Number"/>.</param>
/// <param name="Protocol">HTTP, HTTP2, GRPC, TCP or TLS, resolved from appProtocol, the ServiceEntry protocol or the name prefix; UDP or SCTP for a Kubernetes port of that protocol.</param>
internal sealed record ServicePort(int Number, string Name, int? TargetPort, string Protocol)
{
    public bool IsHttp2 => Protocol is "HTTP2" or "GRPC";

    public bool IsHttp => Protocol is "HTTP" or "HTTP2" or "GRPC";

    /// <summary>An opaque stream the mesh forwards with a TCP proxy (TCP, or TLS the app terminates itself).</summary>
    public bool IsTcp => Protocol is "TCP" or "TLS";

    /// <summary>Whether the mesh proxies the port at all (UDP and SCTP ports pass by it).</summary>
    public bool IsProxied => IsHttp || IsTcp;

    /// <summary>Istio's protocol selection: explicit appProtocol, else the name prefix before the first dash.</summary>
    public static string ProtocolFrom(string? appProtocol, string? name)
    {
        var candidate = appProtocol ?? (name is null ? null : name.Split('-', 2)[0]);
        return candidate?.ToLowerInvariant() switch
        {
            "http" => "HTTP",
            "http2" or "h2c" => "HTTP2",
            "grpc" or "grpc-web" => "GRPC",
            "tcp" or "mongo" or "mysql" or "redis" => "TCP",
            "https" or "tls" => "TLS",
            "udp" => "UDP",
            // Istio falls back to protocol sniffing; Bowline treats unnamed ports as HTTP for now.
            _ => "HTTP",
        };
    }
}

/// <summary>A Kubernetes <c>v1 Service</c>: a name, ports and a label selector over workloads.</summary>
internal sealed record KubernetesService(ResourceMeta Meta, IReadOnlyList<ServicePort> Ports, IReadOnlyDictionary<string, string> Selector)
    : MeshResource(Meta);

/// <summary>An inline endpoint of a ServiceEntry (Istio's WorkloadEntry shape).</summary>
internal sealed record ServiceEntryEndpoint(string Address, IReadOnlyDictionary<string, int> Ports, IReadOnlyDictionary<string, string> Labels, int Weight)
{
    /// <summary>Istio's <c>locality</c>, <c>region/zone/subzone</c>; null when not given.</summary>
    public string? Locality { get; init; }

    /// <summary>The service account the endpoint runs as; null when not given.</summary>
    public string? ServiceAccount { get; init; }
}

/// <summary>An Istio <c>networking.istio.io/v1 ServiceEntry</c>.</summary>
internal sealed record ServiceEntry(
    ResourceMeta Meta,
    IReadOnlyList<string> Hosts,
    IReadOnlyList<ServicePort> Ports,
    string Resolution,
    IReadOnlyList<ServiceEntryEndpoint> Endpoints,
    IReadOnlyDictionary<string, string>? WorkloadSelector) : MeshResource(Meta)
{
    /// <summary>MESH_EXTERNAL (Istio's default) or MESH_INTERNAL; only mTLS and telemetry tell them apart.</summary>
    public string Location { get; init; } = "MESH_EXTERNAL";

    public IReadOnlyList<string> ExportTo { get; init; } = [];

    /// <summary><c>subjectAltNames</c>: the identities its endpoints' certificates carry, checked by clients' TLS.</summary>
    public IReadOnlyList<string> SubjectAltNames { get; init; } = [];

    /// <summary>Whether the endpoints are DNS names the proxy resolves (Envoy STRICT_DNS or LOGICAL_DNS clusters).</summary>
    public bool ResolvesDns => Resolution is "DNS" or "DNS_ROUND_ROBIN";
}

/// <summary>An Istio <c>networking.istio.io/v1 WorkloadEntry</c>: one workload instance outside Kubernetes.</summary>
/// <param name="Ports">Port name to the port the workload (or, in Bowline's explicit mode, its sidecar) accepts on.</param>
internal sealed record WorkloadEntry(
    ResourceMeta Meta,
    string Address,
    IReadOnlyDictionary<string, int> Ports,
    IReadOnlyDictionary<string, string> WorkloadLabels,
    string? ServiceAccount,
    int Weight) : MeshResource(Meta)
{
    /// <summary>Istio's <c>locality</c>, <c>region/zone/subzone</c>; null when not given.</summary>
    public string? Locality { get; init; }
}
