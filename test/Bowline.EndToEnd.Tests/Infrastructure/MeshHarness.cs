using Bowline.ControlPlane;
using Bowline.Proxy;

namespace Bowline.EndToEnd.Tests.Infrastructure;

/// <summary>One sidecar under test: its proxy and the ports an app would use.</summary>
internal sealed record Sidecar(ProxyHost Host, int OutboundPort, IReadOnlyList<InboundPortMapping> Inbound)
{
    /// <summary>An HttpClient that uses the sidecar the way an app does: as its HTTP proxy.</summary>
    public HttpClient Client(TimeSpan? timeout = null) => new(new SocketsHttpHandler
    {
        Proxy = new System.Net.WebProxy($"http://127.0.0.1:{OutboundPort}"),
        UseProxy = true,
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(2),
    })
    { Timeout = timeout ?? Timeouts.Short };

    /// <summary>An HTTP/2 (h2c) client that keeps <c>:authority</c> while connecting to the sidecar, as gRPC apps do.</summary>
    public HttpClient H2Client() => new(ConnectVia()) { Timeout = Timeouts.Short, DefaultRequestVersion = System.Net.HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };

    public SocketsHttpHandler ConnectVia() => new()
    {
        UseProxy = false,
        ConnectCallback = async (_, cancellationToken) =>
        {
            var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(System.Net.IPAddress.Loopback, OutboundPort, cancellationToken);
            return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
        },
    };
}

/// <summary>
/// A mesh on loopback: a control plane watching a temporary config directory, and sidecars started on demand. Everything
/// is real (Kestrel, gRPC, sockets); only the processes are shared with the test runner.
/// </summary>
internal sealed class MeshHarness : IAsyncDisposable
{
    private readonly List<ProxyHost> _proxies = [];
    private readonly Dictionary<string, int> _inboundPorts = [];
    private bool _controlPlaneStopped;

    private MeshHarness(string configDir) => ConfigDir = configDir;

    public string ConfigDir { get; }

    /// <summary>Set for an mTLS mesh: the CA's directory (root, key, token hashes).</summary>
    public string? CaDirectory { get; private init; }

    /// <summary>The certificate lifetime sidecars started from now on ask for (short, to watch rotation); null for the default.</summary>
    public TimeSpan? CertificateTtl { get; set; }

    /// <summary>The app metrics endpoint the next sidecars merge into their status port (Istio's prometheus.io annotations).</summary>
    public Uri? AppMetrics { get; set; }

    /// <summary>
    /// Service accounts by <c>app</c> label for sidecars started from now on, as a Deployment's
    /// <c>serviceAccountName</c> (bookinfo's <c>bookinfo-productpage</c>); without an entry, the app label itself.
    /// </summary>
    public Dictionary<string, string> ServiceAccounts { get; } = new(StringComparer.Ordinal);

    /// <summary>Where sidecars started from now on log (none by default): a test that reads a proxy's log lines adds its provider.</summary>
    public Action<Microsoft.Extensions.Logging.ILoggingBuilder>? SidecarLogging { get; set; }

    /// <summary>Istio's <c>meshConfig.pathNormalization</c> the control plane writes into every HCM (BASE unless started otherwise).</summary>
    public Bowline.ControlPlane.Config.PathNormalization PathNormalization { get; private init; } = Bowline.ControlPlane.Config.PathNormalization.Base;

    public ControlPlaneHost ControlPlane { get; private set; } = null!;

    public int XdsPort { get; private set; }

    /// <summary>Set for a mesh whose sidecars reach the CA and ADS over TLS on the control plane's 15012 (port 0 here).</summary>
    public bool SecureXds { get; private init; }

    /// <summary>The TLS xDS and CA port, when the CA runs.</summary>
    public int SecureXdsPort { get; private set; }

    /// <summary>What the control plane logged, for tests that wait on a refusal it reports.</summary>
    public MeshHarnessLog ControlPlaneLog { get; } = new();

    public static Task<MeshHarness> StartAsync(params (string File, string Yaml)[] files) => StartAsync(mtls: false, files);

    /// <summary>
    /// A mesh with the CA on and automatic mTLS, as <c>bowline up</c> runs it: every sidecar gets a bootstrap token,
    /// a SPIFFE certificate for its service account (the workload's <c>app</c> label) and the sidecar label.
    /// </summary>
    public static Task<MeshHarness> StartMtlsAsync(params (string File, string Yaml)[] files) => StartAsync(mtls: true, Bowline.ControlPlane.Config.PathNormalization.Base, files);

    /// <summary>
    /// The mTLS mesh as <c>bowline up</c> runs it: sidecars reach the CA over TLS on the control plane's secure port with
    /// their bootstrap token, then run ADS there over mutual TLS with their workload certificate.
    /// </summary>
    public static Task<MeshHarness> StartSecureXdsAsync(params (string File, string Yaml)[] files) => StartAsync(mtls: true, Bowline.ControlPlane.Config.PathNormalization.Base, files, secureXds: true);

    /// <summary>An mTLS mesh, as above, whose control plane runs with <c>--path-normalization</c> <paramref name="paths"/>.</summary>
    public static Task<MeshHarness> StartMtlsAsync(Bowline.ControlPlane.Config.PathNormalization paths, params (string File, string Yaml)[] files) => StartAsync(mtls: true, paths, files);

    private static Task<MeshHarness> StartAsync(bool mtls, (string File, string Yaml)[] files) => StartAsync(mtls, Bowline.ControlPlane.Config.PathNormalization.Base, files);

    private static async Task<MeshHarness> StartAsync(bool mtls, Bowline.ControlPlane.Config.PathNormalization paths, (string File, string Yaml)[] files, bool secureXds = false)
    {
        var dir = Directory.CreateTempSubdirectory("bowline-e2e-").FullName;
        var harness = new MeshHarness(dir) { CaDirectory = mtls ? Directory.CreateTempSubdirectory("bowline-e2e-ca-").FullName : null, PathNormalization = paths, SecureXds = secureXds };
        foreach (var (file, yaml) in files)
        {
            await File.WriteAllTextAsync(Path.Combine(dir, file), yaml);
        }
        await harness.StartControlPlaneAsync(0);
        return harness;
    }

    /// <summary>Starts (or restarts, on the same port) the control plane, waiting until it has loaded the config.</summary>
    public async Task StartControlPlaneAsync(int xdsPort)
    {
        _controlPlaneStopped = false;
        ControlPlane = ControlPlaneHost.Create(new ControlPlaneOptions
        {
            ConfigDirectories = [ConfigDir],
            XdsPort = xdsPort,
            SecureXdsPort = SecureXdsPort,
            MonitoringPort = 0,
            Ca = CaDirectory is { } ca ? new Bowline.Ca.CaOptions { Directory = ca } : null,
            MeshMtls = CaDirectory is not null,
            PathNormalization = PathNormalization,
        }, ControlPlaneLog.Attach);
        await ControlPlane.StartAsync(Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        XdsPort = ControlPlane.XdsAddress.Port;
        SecureXdsPort = ControlPlane.SecureXdsAddress?.Port ?? 0;
        await ControlPlane.Mesh.WaitForChangeAsync(0, Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
    }

    public async Task StopControlPlaneAsync()
    {
        await ControlPlane.StopAsync(Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        await ControlPlane.DisposeAsync();
        _controlPlaneStopped = true;
    }

    /// <summary>Writes a config file and waits until the control plane has published a generation that includes it.</summary>
    public async Task WriteConfigAsync(string file, string yaml)
    {
        var generation = ControlPlane.Mesh.Current.Config.Generation;
        await File.WriteAllTextAsync(Path.Combine(ConfigDir, file), yaml);
        await ControlPlane.Mesh.WaitForChangeAsync(generation, Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
    }

    /// <summary>
    /// Starts a sidecar for a workload and registers it (a WorkloadEntry in the config directory, as <c>bowline up</c>
    /// does); returns once its listeners are open and it has endpoints for <paramref name="waitForClusters"/>.
    /// </summary>
    public Task<Sidecar> StartSidecarAsync(string name, IReadOnlyDictionary<string, string> labels, IReadOnlyList<(string PortName, int ContainerPort, int AppPort)> ports, params string[] waitForClusters) =>
        StartSidecarAsync(name, labels, ports, random: null, waitForClusters);

    /// <param name="random">A seeded source for the proxy's weighted picks, balancing and fault rolls, so statistical assertions are reproducible.</param>
    public Task<Sidecar> StartSidecarAsync(string name, IReadOnlyDictionary<string, string> labels, IReadOnlyList<(string PortName, int ContainerPort, int AppPort)> ports, Random? random, params string[] waitForClusters) =>
        StartSidecarAsync(name, labels, ports, random, locality: "", waitForClusters);

    /// <param name="locality">Where the workload runs (<c>region/zone/subzone</c>): on its WorkloadEntry and in its proxy's node.</param>
    public Task<Sidecar> StartSidecarAsync(string name, IReadOnlyDictionary<string, string> labels, IReadOnlyList<(string PortName, int ContainerPort, int AppPort)> ports, Random? random, string locality, params string[] waitForClusters) =>
        StartSidecarAsync(name, labels, ports, random, locality, new Dictionary<string, int>(), waitForClusters);

    /// <param name="outboundTcp">Explicit mode's outbound TCP: <c>host:port</c> of a TCP service to the local port the app dials for it.</param>
    public async Task<Sidecar> StartSidecarAsync(string name, IReadOnlyDictionary<string, string> labels, IReadOnlyList<(string PortName, int ContainerPort, int AppPort)> ports, Random? random, string locality,
        IReadOnlyDictionary<string, int> outboundTcp, params string[] waitForClusters)
    {
        var inbound = ports.Select(p => new InboundPortMapping(p.ContainerPort, Ports.Free(), p.AppPort)).ToList();
        if (inbound.Count > 0)
        {
            _inboundPorts[name] = inbound[0].ListenPort;
        }
        var outbound = Ports.Free();
        var serviceAccount = labels.TryGetValue("app", out var app) ? ServiceAccounts.GetValueOrDefault(app, app) : "default";
        if (inbound.Count > 0)
        {
            var portMap = string.Join(", ", ports.Zip(inbound).Select(p => $"{p.First.PortName}: {p.Second.ListenPort}"));
            var labelMap = string.Join(", ", labels.Select(l => $"{l.Key}: {l.Value}").Concat(CaDirectory is null ? [] : ["security.istio.io/tlsMode: istio"]));
            await WriteConfigAsync($"zz-registry-{name}.yaml", $$"""
                apiVersion: networking.istio.io/v1
                kind: WorkloadEntry
                metadata: {name: {{name}}, namespace: default}
                spec:
                  address: 127.0.0.1
                  labels: { {{labelMap}} }
                  ports: { {{portMap}} }
                  serviceAccount: {{serviceAccount}}
                  locality: "{{locality}}"
                """);
        }
        var host = ProxyHost.Create(new ProxyOptions
        {
            NodeId = $"sidecar~127.0.0.1~{name}.default~default.svc.cluster.local",
            WorkloadName = name,
            Labels = labels,
            XdsAddress = SecureXds ? new Uri($"https://127.0.0.1:{SecureXdsPort}") : new Uri($"http://127.0.0.1:{XdsPort}"),
            ControlPlaneRootsPem = SecureXds ? ControlPlaneRoot() : null,
            AdminPort = 0,
            OutboundPort = outbound,
            InboundPorts = inbound,
            OutboundTcpPorts = outboundTcp,
            InitialBackoff = TimeSpan.FromMilliseconds(100),
            MaxBackoff = TimeSpan.FromSeconds(1),
            Locality = locality,
            ServiceAccount = serviceAccount,
            CertificateTtl = CertificateTtl ?? TimeSpan.FromHours(24),
            CaToken = CaDirectory is { } ca ? Bowline.Ca.Authentication.BootstrapTokenStore.Open(ca, TimeProvider.System).Issue(new Bowline.Ca.WorkloadIdentity("default", serviceAccount)) : null,
            StatusPort = 0,
            AppMetrics = AppMetrics,
            // Spans leave within a fraction of a second rather than Envoy's 5 s, so a trace test waits less.
            TraceFlushInterval = TimeSpan.FromMilliseconds(200),
        }, logging: SidecarLogging, random: random);
        await StartAndWaitAsync(host, waitForClusters);
        return new Sidecar(host, outbound, inbound);
    }

    /// <summary>
    /// Starts the ingress gateway (<c>istio: ingressgateway</c>, service account <c>istio-ingressgateway</c>) with
    /// each declared Gateway port bound where <paramref name="ports"/> says; with mesh mTLS on it holds a workload
    /// certificate, so it originates mTLS to sidecars. Waits for warm listeners and the given clusters' hosts.
    /// </summary>
    public async Task<ProxyHost> StartGatewayAsync(IReadOnlyDictionary<int, int> ports, Random? random, params string[] waitForClusters)
    {
        const string ServiceAccount = "istio-ingressgateway";
        var host = ProxyHost.Create(new ProxyOptions
        {
            NodeId = "router~127.0.0.1~istio-ingressgateway.default~default.svc.cluster.local",
            WorkloadName = "istio-ingressgateway",
            Labels = new Dictionary<string, string> { ["istio"] = "ingressgateway" },
            Gateway = true,
            GatewayPorts = ports,
            XdsAddress = SecureXds ? new Uri($"https://127.0.0.1:{SecureXdsPort}") : new Uri($"http://127.0.0.1:{XdsPort}"),
            ControlPlaneRootsPem = SecureXds ? ControlPlaneRoot() : null,
            AdminPort = 0,
            InitialBackoff = TimeSpan.FromMilliseconds(100),
            MaxBackoff = TimeSpan.FromSeconds(1),
            ServiceAccount = ServiceAccount,
            CertificateTtl = CertificateTtl ?? TimeSpan.FromHours(24),
            CaToken = CaDirectory is { } ca ? Bowline.Ca.Authentication.BootstrapTokenStore.Open(ca, TimeProvider.System).Issue(new Bowline.Ca.WorkloadIdentity("default", ServiceAccount)) : null,
        }, logging: SidecarLogging, random: random);
        await StartAndWaitAsync(host, waitForClusters);
        return host;
    }

    /// <summary>Starts a proxy of the mesh and waits for warm listeners and for hosts in each of the given clusters.</summary>
    private async Task StartAndWaitAsync(ProxyHost host, string[] waitForClusters)
    {
        _proxies.Add(host);
        await host.StartAsync(Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        await host.Snapshots.WaitUntilAsync(s => s.Listeners.Count > 0 && s.Listeners.Values.All(l => l.IsWarm) && waitForClusters.All(s.Clusters.ContainsKey), Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        foreach (var cluster in waitForClusters)
        {
            // Hosts can arrive after the snapshot (EDS, a DNS resolution, a health check): wait on the cluster itself.
            await host.Snapshots.Current.Clusters[cluster].WaitUntilAsync(c => c?.Hosts.Available.Length > 0, Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        }
    }

    /// <summary>
    /// Starts a proxy over the TLS port that proves <paramref name="serviceAccount"/> (it is given that identity's
    /// bootstrap token) but sends <paramref name="nodeId"/>; returns at once, without waiting for config, with the log
    /// it writes. Stopped with the mesh.
    /// </summary>
    public async Task<(ProxyHost Host, MeshHarnessLog Log)> StartProxyWithNodeIdAsync(string name, string serviceAccount, string nodeId)
    {
        var log = new MeshHarnessLog();
        var host = ProxyHost.Create(new ProxyOptions
        {
            NodeId = nodeId,
            WorkloadName = name,
            ServiceAccount = serviceAccount,
            XdsAddress = new Uri($"https://127.0.0.1:{SecureXdsPort}"),
            ControlPlaneRootsPem = ControlPlaneRoot(),
            AdminPort = 0,
            OutboundPort = Ports.Free(),
            InitialBackoff = TimeSpan.FromMilliseconds(100),
            MaxBackoff = TimeSpan.FromSeconds(1),
            CaToken = Bowline.Ca.Authentication.BootstrapTokenStore.Open(CaDirectory!, TimeProvider.System).Issue(new Bowline.Ca.WorkloadIdentity("default", serviceAccount)),
        }, log.Attach);
        _proxies.Add(host);
        await host.StartAsync(Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        return (host, log);
    }

    /// <summary>The mesh root sidecars verify the control plane by, as <c>bowline up</c> hands it over.</summary>
    private string ControlPlaneRoot() => File.ReadAllText(Path.Combine(CaDirectory!, "root-cert.pem"));

    /// <summary>The port a workload's sidecar accepts inbound traffic on (its endpoint address in EDS).</summary>
    public int InboundPortOf(string workload) => _inboundPorts[workload];

    public async ValueTask DisposeAsync()
    {
        foreach (var proxy in _proxies)
        {
            await proxy.StopAsync().Within(Timeouts.Short);
            await proxy.DisposeAsync();
        }
        if (!_controlPlaneStopped)
        {
            await ControlPlane.DisposeAsync();
        }
        Directory.Delete(ConfigDir, recursive: true);
        if (CaDirectory is not null)
        {
            Directory.Delete(CaDirectory, recursive: true);
        }
    }
}
