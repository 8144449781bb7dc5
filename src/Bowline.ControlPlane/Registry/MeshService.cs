using Bowline.ControlPlane.Config;

namespace Bowline.ControlPlane.Registry;

/// <summary>A service as the mesh sees it, whatever declared it (a Kubernetes Service or a ServiceEntry host).</summary>
/// <param name="Hostname">The fully qualified name, <c>reviews.default.svc.cluster.local</c>.</param>
/// <param name="ShortName">The Kubernetes name (<c>reviews</c>), or null for a ServiceEntry host.</param>
/// <param name="Selector">Labels that select the workloads behind it; null when its endpoints are listed inline.</param>
internal sealed record MeshService(
    string Hostname,
    string? ShortName,
    string Namespace,
    IReadOnlyList<ServicePort> Ports,
    IReadOnlyDictionary<string, string>? Selector,
    IReadOnlyList<ServiceEntryEndpoint> InlineEndpoints)
{
    /// <summary>A ServiceEntry's resolution (STATIC, NONE, DNS, DNS_ROUND_ROBIN); null for a Kubernetes Service.</summary>
    public string? Resolution { get; init; }

    /// <summary>A ServiceEntry with location MESH_EXTERNAL (its default): outside the mesh, so never sent automatic mTLS.</summary>
    public bool MeshExternal { get; init; }

    /// <summary>A ServiceEntry's <c>subjectAltNames</c>: identities its endpoints' certificates carry.</summary>
    public IReadOnlyList<string> SubjectAltNames { get; init; } = [];

    /// <summary>Whether the proxy resolves the endpoints by DNS (Istio: DNS is STRICT_DNS, DNS_ROUND_ROBIN is LOGICAL_DNS).</summary>
    public bool ResolvesDns => Resolution is "DNS" or "DNS_ROUND_ROBIN";

    /// <summary>Every name a client in <paramref name="clientNamespace"/> may use for this service, Kubernetes DNS style.</summary>
    public IEnumerable<string> NameForms(string clientNamespace)
    {
        yield return Hostname;
        if (ShortName is null)
        {
            yield break;
        }
        yield return $"{ShortName}.{Namespace}.svc";
        yield return $"{ShortName}.{Namespace}";
        if (clientNamespace == Namespace)
        {
            yield return ShortName;
        }
    }
}

/// <summary>One endpoint of a service port, resolved to the address and port traffic is sent to.</summary>
internal sealed record MeshEndpoint(string Address, int Port, IReadOnlyDictionary<string, string> Labels, int Weight)
{
    /// <summary>Where the endpoint runs (its WorkloadEntry's or ServiceEntry endpoint's <c>locality</c>); none when not given.</summary>
    public MeshLocality Locality { get; init; } = MeshLocality.None;

    /// <summary>The namespace of the workload (its WorkloadEntry's, or the ServiceEntry's for an inline endpoint).</summary>
    public string? Namespace { get; init; }

    /// <summary>The service account it runs as, as given; null when its entry names none.</summary>
    public string? ServiceAccount { get; init; }

    /// <summary>
    /// The workload's name for telemetry (a WorkloadEntry's <c>service.istio.io/workload-name</c> label, else its
    /// name); null when the endpoint is no known workload (a ServiceEntry's inline endpoint, a DNS name).
    /// </summary>
    public string? WorkloadName { get; init; }

    /// <summary>
    /// Istio's endpoint TLS mode: <c>istio</c> when the workload has a sidecar that speaks Istio mTLS, else
    /// <c>disabled</c>. As Istio reads it for a WorkloadEntry: the <c>security.istio.io/tlsMode</c> label, else
    /// <c>istio</c> when a service account is named, else <c>disabled</c>.
    /// </summary>
    public string TlsMode { get; init; } = DisabledTlsMode;

    public const string IstioTlsMode = "istio";
    public const string DisabledTlsMode = "disabled";
    public const string TlsModeLabel = "security.istio.io/tlsMode";

    /// <summary>Istio's getTLSModeFromWorkloadEntry.</summary>
    public static string TlsModeOf(IReadOnlyDictionary<string, string> labels, string? serviceAccount) =>
        labels.TryGetValue(TlsModeLabel, out var mode) ? mode : string.IsNullOrEmpty(serviceAccount) ? DisabledTlsMode : IstioTlsMode;
}
