using Bowline.ControlPlane.Config;

namespace Bowline.Cli.LocalMesh;

/// <summary>One container port: the app listens on <paramref name="AppPort"/>, its sidecar on <paramref name="InboundPort"/>.</summary>
internal sealed record PortPlan(int ContainerPort, int AppPort, int InboundPort);

/// <summary>
/// A TCP service port the app reaches by dialing <paramref name="ListenPort"/> on loopback, where its sidecar listens
/// (explicit mode has no capture to send it there).
/// </summary>
/// <param name="Service">The Service's name (the environment variables are named after it).</param>
/// <param name="Host">The service's fully qualified name, as the control plane knows it.</param>
internal sealed record OutboundTcpPlan(string Service, string Host, ServicePort Port, int ListenPort);

/// <summary>Where one workload and its sidecar run, decided before anything starts.</summary>
/// <param name="Id">Unique among the workloads: the name, or <c>namespace.name</c> when two namespaces share a name; names log files.</param>
/// <param name="ServicePorts">The WorkloadEntry <c>ports</c> map: service port name to the sidecar inbound port.</param>
/// <param name="App">How to start the app, without the mesh environment (see <see cref="AppEnvironment"/>).</param>
internal sealed record WorkloadPlan(
    Workload Workload,
    string Id,
    IReadOnlyList<PortPlan> Ports,
    int OutboundPort,
    int AdminPort,
    IReadOnlyDictionary<string, int> ServicePorts,
    LaunchSpec App)
{
    /// <summary>The TCP ports of the Services in the workload's namespace, each on a local port of its own.</summary>
    public IReadOnlyList<OutboundTcpPlan> OutboundTcp { get; init; } = [];

    /// <summary>The sidecar's status port (Istio's 15020): merged metrics and readiness.</summary>
    public int StatusPort { get; init; }

    /// <summary>
    /// The app's own metrics, as Istio's annotations declare them: <c>prometheus.io/scrape: "true"</c>, the container
    /// port in <c>prometheus.io/port</c> (here the port the app really listens on) and <c>prometheus.io/path</c>
    /// (default <c>/metrics</c>). Null when the workload declares none.
    /// </summary>
    public string? AppMetrics
    {
        get
        {
            var annotations = Workload.Meta.Annotations;
            if (annotations.GetValueOrDefault("prometheus.io/scrape") != "true" || !int.TryParse(annotations.GetValueOrDefault("prometheus.io/port"), out var port))
            {
                return null;
            }
            var appPort = Ports.FirstOrDefault(p => p.ContainerPort == port)?.AppPort ?? port;
            var path = annotations.GetValueOrDefault("prometheus.io/path") is { Length: > 0 } p ? (p.StartsWith('/') ? p : "/" + p) : "/metrics";
            return $"http://127.0.0.1:{appPort}{path}";
        }
    }

    public string Name => Workload.Meta.Name;

    public string Namespace => Workload.Meta.Namespace;

    public string ServiceAccount => string.IsNullOrEmpty(Workload.ServiceAccount) ? "default" : Workload.ServiceAccount;

    public string Outbound => $"127.0.0.1:{OutboundPort}";
}
