using System.Globalization;
using System.Net;

namespace Bowline.Cli.LocalMesh;

/// <summary>One workload: its app and its sidecar, each supervised, and its entry in the registry while it runs.</summary>
internal sealed class WorkloadUnit
{
    public static readonly TimeSpan AppStartTimeout = TimeSpan.FromSeconds(20);
    public static readonly TimeSpan SidecarStartTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Shorter than the proxy's default: <c>up</c> sends SIGTERM and kills after <see cref="ProcessTerminator.Grace"/>,
    /// so a drain as long as the grace would always end in a kill. Gateways use it too.
    /// </summary>
    public const string DrainSeconds = "2";

    private readonly StateLayout _state;
    private readonly SupervisorContext _context;
    private volatile bool _registered;

    public WorkloadUnit(WorkloadPlan plan, BowlineExecutable self, ControlPlaneEndpoint xds, StateLayout state, SupervisorContext context)
    {
        Plan = plan;
        _state = state;
        _context = context;
        var app = plan.App with { Environment = AppEnvironment.For(plan) };
        App = new SupervisedProcess($"{plan.Id} app", () => app, context);
        var token = state.IssueToken(plan.Id, plan.Namespace, plan.ServiceAccount);
        var sidecar = self.Launch([.. SidecarArguments(plan, xds), "--ca-token-file", token], state.Root, state.LogFile($"{plan.Id}.proxy.log"));
        Sidecar = new SupervisedProcess($"{plan.Id} sidecar", () => sidecar, context);
    }

    public WorkloadPlan Plan { get; }

    public SupervisedProcess App { get; }

    public SupervisedProcess Sidecar { get; }

    /// <summary>
    /// Starts the app, waits until it accepts on its first port, registers the workload and starts the sidecar. An app
    /// that is slow or crashing is reported, not fatal: its supervisor keeps restarting it, and the rest of the mesh runs.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        App.Start(cancellationToken);
        var app = App.Current!;
        if (Plan.Ports.Count > 0)
        {
            var port = Plan.Ports[0].AppPort;
            if (!await Readiness.WaitForTcpAsync(IPAddress.Loopback, port, AppStartTimeout, () => app.HasExited, _context.Time, cancellationToken).ConfigureAwait(false))
            {
                var why = app.HasExited ? $"exited with code {app.ExitCode}" : $"does not accept on 127.0.0.1:{port} after {AppStartTimeout.TotalSeconds:0} s";
                await Warn($"{App.Name} {why}; starting its sidecar anyway", App).ConfigureAwait(false);
            }
        }
        // Registered before the sidecar starts, so the control plane already knows the endpoint when the sidecar asks.
        RegistryFile.Write(_state, Plan);
        _registered = true;
        Sidecar.Start(cancellationToken);
        var sidecar = Sidecar.Current!;
        if (!await Readiness.WaitForTcpAsync(IPAddress.Loopback, Plan.AdminPort, SidecarStartTimeout, () => sidecar.HasExited, _context.Time, cancellationToken).ConfigureAwait(false))
        {
            var why = sidecar.HasExited ? $"exited with code {sidecar.ExitCode}" : $"has no admin port 127.0.0.1:{Plan.AdminPort} after {SidecarStartTimeout.TotalSeconds:0} s";
            await Warn($"{Sidecar.Name} {why}", Sidecar).ConfigureAwait(false);
        }
    }

    /// <summary>Forgets the endpoint: called once the workload is stopped for good.</summary>
    public void Unregister()
    {
        if (_registered)
        {
            RegistryFile.Remove(_state, Plan);
            _registered = false;
        }
    }

    public WorkloadStatus Status()
    {
        var running = App.IsRunning && Sidecar.IsRunning;
        return new WorkloadStatus(
            Plan.Name,
            Plan.Namespace,
            Plan.Workload.Meta.Labels,
            new AppStatus(Pid(App), Plan.Ports.ToDictionary(p => Key(p.ContainerPort), p => p.AppPort)),
            new SidecarStatus(Pid(Sidecar), Plan.Ports.ToDictionary(p => Key(p.ContainerPort), p => p.InboundPort), Plan.OutboundPort, $"http://127.0.0.1:{Plan.AdminPort}/"),
            App.Restarts + Sidecar.Restarts,
            running ? "running" : "restarting");
    }

    private static int? Pid(SupervisedProcess process) => process.IsRunning ? process.Current?.Id : null;

    private static string Key(int port) => port.ToString(CultureInfo.InvariantCulture);

    private Task Warn(string message, SupervisedProcess process)
    {
        var log = process == App ? $"{Plan.Id}.app.log" : $"{Plan.Id}.proxy.log";
        var file = _state.LogFile(log);
        return _context.Console.WriteLineAsync($"warning: {message}; {file}:{Environment.NewLine}{LogTail.Read(file)}");
    }

    private static List<string> SidecarArguments(WorkloadPlan plan, ControlPlaneEndpoint xds)
    {
        var arguments = new List<string>
        {
            "proxy",
            "--node-id", $"sidecar~127.0.0.1~{plan.Name}.{plan.Namespace}~{plan.Namespace}.svc.cluster.local",
            "--workload", plan.Name,
            "--namespace", plan.Namespace,
        };
        arguments.AddRange(xds.ProxyArguments());
        foreach (var (key, value) in plan.Workload.Meta.Labels)
        {
            arguments.AddRange(["--label", $"{key}={value}"]);
        }
        arguments.AddRange(
        [
            "--service-account", plan.ServiceAccount,
            "--admin-port", Key(plan.AdminPort),
            "--status-port", Key(plan.StatusPort),
            "--bind", "127.0.0.1",
            "--outbound-port", Key(plan.OutboundPort),
            "--drain-seconds", DrainSeconds,
        ]);
        if (plan.AppMetrics is { } metrics)
        {
            arguments.AddRange(["--app-metrics", metrics]);
        }
        foreach (var port in plan.Ports)
        {
            arguments.AddRange(["--inbound", $"{port.ContainerPort}={port.InboundPort}:{port.AppPort}"]);
        }
        foreach (var tcp in plan.OutboundTcp)
        {
            arguments.AddRange(["--outbound-tcp", $"{tcp.Host}:{Key(tcp.Port.Number)}={Key(tcp.ListenPort)}"]);
        }
        return arguments;
    }
}
