using System.Globalization;
using System.Text.RegularExpressions;

namespace Bowline.Cli.LocalMesh;

/// <summary>
/// The supervised <c>bowline controlplane</c>, watching the mesh directory and the registry. Its bound ports are read
/// from the line it prints, so port 0 works, and a restart binds the same ports again, which is what the sidecars dial.
/// </summary>
internal sealed partial class ControlPlaneUnit
{
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);

    private readonly BowlineExecutable _self;
    private readonly UpOptions _options;
    private readonly StateLayout _state;
    private readonly TaskCompletionSource _announced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile Uri? _xds;
    private volatile Uri? _secureXds;
    private volatile Uri? _monitoring;

    public ControlPlaneUnit(BowlineExecutable self, UpOptions options, StateLayout state, SupervisorContext context)
    {
        _self = self;
        _options = options;
        _state = state;
        Process = new SupervisedProcess("control plane", Launch, context, OnLine);
    }

    public SupervisedProcess Process { get; }

    public string LogFile => _state.LogFile("controlplane.log");

    public Uri Xds => _xds ?? throw new InvalidOperationException("the control plane has not started");

    /// <summary>The TLS xDS and CA address every sidecar and the gateway dial.</summary>
    public Uri SecureXds => _secureXds ?? throw new InvalidOperationException("the control plane has not started or serves no TLS port");

    public Uri Monitoring => _monitoring ?? throw new InvalidOperationException("the control plane has not started");

    /// <summary>Starts it and waits, at most <see cref="StartTimeout"/>, until <c>/ready</c> answers 200.</summary>
    public async Task StartAsync(TimeProvider time, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        Process.Start(cancellationToken);
        var first = Process.Current!;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(StartTimeout);
            try
            {
                await Task.WhenAny(_announced.Task, first.WaitForExitAsync(timeout.Token)).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Fall through to the check below.
            }
        }
        cancellationToken.ThrowIfCancellationRequested();
        if (!_announced.Task.IsCompleted)
        {
            throw Failed(first.HasExited ? $"exited with code {first.ExitCode}" : $"did not print its addresses within {StartTimeout.TotalSeconds:0} s");
        }
        var remaining = StartTimeout - time.GetElapsedTime(started);
        if (!await Readiness.WaitForHttpOkAsync(new Uri(Monitoring, "ready"), remaining, () => first.HasExited, time, cancellationToken).ConfigureAwait(false))
        {
            cancellationToken.ThrowIfCancellationRequested();
            throw Failed(first.HasExited ? $"exited with code {first.ExitCode}" : $"{Monitoring}ready did not answer 200 within {StartTimeout.TotalSeconds:0} s");
        }
    }

    private StartupException Failed(string why) =>
        new($"the control plane {why}; {LogFile}:{Environment.NewLine}{LogTail.Read(LogFile)}");

    private LaunchSpec Launch()
    {
        // Until the first announcement these are the requested ports (0 = any); afterwards the bound ones.
        var xdsPort = _xds?.Port ?? _options.XdsPort;
        var secureXdsPort = _secureXds?.Port ?? _options.SecureXdsPort;
        var monitoringPort = _monitoring?.Port ?? _options.MonitoringPort;
        return _self.Launch(
            [
                "controlplane",
                "--config", _options.Directory,
                "--config", _state.Registry,
                "--xds-port", xdsPort.ToString(CultureInfo.InvariantCulture),
                "--secure-xds-port", secureXdsPort.ToString(CultureInfo.InvariantCulture),
                "--monitoring-port", monitoringPort.ToString(CultureInfo.InvariantCulture),
                "--ca-dir", _state.Ca,
                // As Istio's demo profile: every sidecar and the gateway log each request to their own output (their log file).
                "--access-log-file", "/dev/stdout",
                "--log-level", "Information",
            ],
            _options.Directory,
            LogFile);
    }

    private void OnLine(string line)
    {
        // bowline controlplane: xds http://127.0.0.1:15010/ secure-xds https://127.0.0.1:15012/ monitoring http://127.0.0.1:15014/
        var match = AddressLine().Match(line);
        if (match.Success
            && Uri.TryCreate(match.Groups["xds"].Value, UriKind.Absolute, out var xds)
            && Uri.TryCreate(match.Groups["secure"].Value, UriKind.Absolute, out var secure)
            && Uri.TryCreate(match.Groups["monitoring"].Value, UriKind.Absolute, out var monitoring))
        {
            _xds = xds;
            _secureXds = secure;
            _monitoring = monitoring;
            _announced.TrySetResult();
        }
    }

    [GeneratedRegex(@"^bowline controlplane: xds (?<xds>\S+) secure-xds (?<secure>\S+) monitoring (?<monitoring>\S+)")]
    private static partial Regex AddressLine();
}
