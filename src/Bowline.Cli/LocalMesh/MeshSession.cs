namespace Bowline.Cli.LocalMesh;

/// <summary>
/// The running mesh: control plane, workloads and ingress gateway, each supervised. Owns every child process it starts
/// and stops all of them in <see cref="StopAsync"/>, whether startup finished or not.
/// </summary>
/// <remarks>Thread-safety: status.json is rewritten under one lock from any supervision loop.</remarks>
internal sealed class MeshSession
{
    private readonly UpOptions _options;
    private readonly IReadOnlyList<WorkloadPlan> _plans;
    private readonly IngressPlan _ingress;
    private readonly StateLayout _state;
    private readonly TimeProvider _time;
    private readonly TextWriter _console;
    private readonly BowlineExecutable _self = BowlineExecutable.Current();
    private readonly SupervisorContext _context;
    private readonly Lock _statusGate = new();
    private readonly List<WorkloadUnit> _workloads = [];
    private readonly ControlPlaneUnit _controlPlane;
    private GatewayUnit? _gateway;
    private volatile bool _published;

    public MeshSession(UpOptions options, IReadOnlyList<WorkloadPlan> plans, IngressPlan ingress, StateLayout state, TimeProvider time, TextWriter console)
    {
        _options = options;
        _plans = plans;
        _ingress = ingress;
        _state = state;
        _time = time;
        _console = console;
        _context = new SupervisorContext(time, console, OnProcessChanged);
        _controlPlane = new ControlPlaneUnit(_self, options, state, _context);
    }

    public async Task StartAsync(CancellationToken stopping)
    {
        var started = _time.GetTimestamp();
        await _controlPlane.StartAsync(_time, stopping).ConfigureAwait(false);
        // Every sidecar and the gateway reach the CA and ADS over TLS, verifying the control plane by the mesh root.
        var xds = new ControlPlaneEndpoint(_controlPlane.SecureXds, _state.WriteControlPlaneRoot());
        await Progress($"control plane ready: xds {xds.Address} (TLS; plaintext {_controlPlane.Xds} on loopback) monitoring {_controlPlane.Monitoring}", started).ConfigureAwait(false);
        foreach (var plan in _plans)
        {
            _workloads.Add(new WorkloadUnit(plan, _self, xds, _state, _context));
        }
        // The gateway starts alongside the workloads: it needs only the control plane, and the first page comes sooner.
        _gateway = new GatewayUnit(_ingress, _self, xds, _state, _context);
        var gateway = StartGatewayAsync(_gateway, started, stopping);
        await Task.WhenAll(_workloads.Select(async w =>
        {
            await w.StartAsync(stopping).ConfigureAwait(false);
            var inbound = string.Join(", ", w.Plan.Ports.Select(p => $"{p.ContainerPort} on :{p.InboundPort} -> app :{p.AppPort}"));
            await Progress($"{w.Plan.Id} started: {(inbound.Length > 0 ? inbound : "no ports")}, outbound :{w.Plan.OutboundPort}", started).ConfigureAwait(false);
        })).ConfigureAwait(false);
        await gateway.ConfigureAwait(false);
    }

    private async Task StartGatewayAsync(GatewayUnit unit, long started, CancellationToken stopping)
    {
        if (await unit.StartAsync(stopping).ConfigureAwait(false))
        {
            await Progress(_ingress.HasGateway ? $"ingress gateway listening on {_ingress.Url}" : "ingress gateway started", started).ConfigureAwait(false);
        }
    }

    /// <summary>Writes status.json now and again whenever a pid changes.</summary>
    public MeshStatus Publish()
    {
        _published = true;
        return WriteStatus();
    }

    /// <summary>
    /// Stops every child. Supervision ends first (the token given to <see cref="StartAsync"/> must be cancelled), so
    /// nothing restarts while SIGTERM and, after <see cref="ProcessTerminator.Grace"/>, a kill go out. Then the registry
    /// entries and status.json go, so nothing points at the dead processes.
    /// </summary>
    public async Task<string> StopAsync()
    {
        var supervisors = AllSupervisors().ToList();
        try
        {
            await Task.WhenAll(supervisors.Select(s => s.Completion)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A supervisor that failed must not keep the others' processes from being terminated below.
            await Console.Error.WriteLineAsync($"bowline up: a supervisor failed: {e.Message}").ConfigureAwait(false);
        }
        _published = false;
        var started = _time.GetTimestamp();
        var running = supervisors.Select(s => s.Current).OfType<ChildProcess>().Where(c => !c.HasExited).ToList();
        var killed = await ProcessTerminator.StopAllAsync(running, _time).ConfigureAwait(false);
        foreach (var child in supervisors.Select(s => s.Current).OfType<ChildProcess>())
        {
            child.Dispose();
        }
        foreach (var workload in _workloads)
        {
            workload.Unregister();
        }
        File.Delete(_state.StatusFile);
        var restarts = supervisors.Sum(s => s.Restarts);
        return $"stopped {running.Count} processes in {_time.GetElapsedTime(started).TotalSeconds:0.0} s"
            + (killed > 0 ? $" ({killed} killed after ignoring SIGTERM for {ProcessTerminator.Grace.TotalSeconds:0} s)" : "")
            + (restarts > 0 ? $"; {restarts} restarts while up" : "")
            + "; registry entries and status.json removed";
    }

    private Task Progress(string message, long started) =>
        _console.WriteLineAsync($"{message} ({_time.GetElapsedTime(started).TotalSeconds:0.0} s)");

    private IEnumerable<SupervisedProcess> AllSupervisors()
    {
        yield return _controlPlane.Process;
        foreach (var workload in _workloads)
        {
            yield return workload.App;
            yield return workload.Sidecar;
        }
        if (_gateway is not null)
        {
            yield return _gateway.Process;
        }
    }

    private void OnProcessChanged()
    {
        if (_published)
        {
            WriteStatus();
        }
    }

    private MeshStatus WriteStatus()
    {
        lock (_statusGate)
        {
            var status = Snapshot();
            try
            {
                StatusStore.Write(_state.StatusFile, status);
            }
            catch (IOException e)
            {
                _console.WriteLine($"warning: could not write {_state.StatusFile}: {e.Message}");
            }
            return status;
        }
    }

    private MeshStatus Snapshot() => new(
        _options.Directory,
        _state.Root,
        _state.Logs,
        Environment.ProcessId,
        new ControlPlaneStatus(_controlPlane.Process.IsRunning ? _controlPlane.Process.Current?.Id : null, _controlPlane.SecureXds.ToString(), _controlPlane.Monitoring.ToString()),
        _gateway?.Status() ?? new IngressStatus(_ingress.Url, null, _ingress.Admin),
        _workloads.Select(w => w.Status()).ToList());
}
