using Bowline.Commands;
using Spectre.Console;

namespace Bowline.Cli.LocalMesh;

/// <summary>
/// <c>bowline up</c> from start to finish: read the directory, build, plan ports, start and supervise everything, print
/// where it runs, and on SIGINT/SIGTERM stop it all and clean up. docs/local-mesh.md describes the result.
/// </summary>
internal sealed class LocalMeshRunner(TimeProvider time, IAnsiConsole console, TextWriter output, TextWriter error)
{
    /// <summary>How long a forced exit (System.CommandLine's termination timeout) is held back for the stop to finish.</summary>
    private static readonly TimeSpan ExitHold = TimeSpan.FromSeconds(10);

    /// <returns>0 after a clean stop, 1 when a build or the start failed, 2 for bad input.</returns>
    public async Task<int> RunAsync(UpOptions options, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(options.Directory))
        {
            await error.WriteLineAsync($"bowline up: {options.Directory} is not a directory").ConfigureAwait(false);
            return 2;
        }
        var mesh = MeshDirectory.Load(options.Directory, error);
        if (mesh.Workloads.Count == 0)
        {
            await error.WriteLineAsync($"bowline up: no Workload in {options.Directory}; add a bowline.io/v1alpha1 Workload (see samples/bookinfo/workloads.yaml) for each process to run").ConfigureAwait(false);
            return 2;
        }
        if (mesh.Workloads.GroupBy(w => (w.Meta.Namespace, w.Meta.Name)).FirstOrDefault(g => g.Count() > 1) is { } duplicate)
        {
            await error.WriteLineAsync($"bowline up: Workload {duplicate.Key.Namespace}/{duplicate.Key.Name} is declared twice ({string.Join(", ", duplicate.Select(w => w.Meta.File))}); give each a unique name").ConfigureAwait(false);
            return 2;
        }
        var state = new StateLayout(options.StateDirectory);
        if (StatusStore.Read(state.StatusFile) is { } previous && ProcessProbe.IsAlive(previous.Pid))
        {
            await error.WriteLineAsync($"bowline up: another bowline up (pid {previous.Pid}) runs with state {state.Root}; stop it first, or give --state").ConfigureAwait(false);
            return 1;
        }
        state.Create();
        RegistryFile.RemoveAll(state);

        using var signals = new ShutdownSignals();
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, signals.Token);
        var programs = await new ProjectBuilder(state, time, output).BuildAsync(mesh.Workloads, options.NoBuild, stopping.Token).ConfigureAwait(false);
        if (programs is null)
        {
            return 1;
        }
        var ports = new FreePorts();
        ports.Reserve(options.XdsPort);
        ports.Reserve(options.SecureXdsPort);
        ports.Reserve(options.MonitoringPort);
        var ingress = IngressPlan.Create(mesh, options.Ingress, ports);
        var plans = WorkloadPlanner.Plan(mesh, programs, ports, state);

        var session = new MeshSession(options, plans, ingress, state, time, output);
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // If the command line library gives up waiting and lets Main return, hold the exit until the children are gone.
        EventHandler holdExit = (_, _) => stopped.Task.Wait(ExitHold);
        AppDomain.CurrentDomain.ProcessExit += holdExit;
        var exitCode = 0;
        try
        {
            await session.StartAsync(stopping.Token).ConfigureAwait(false);
            var status = session.Publish();
            StatusStore.RememberLastUp(state.Root);
            console.WriteLine();
            MeshTable.Write(console, status);
            console.WriteLine(ingress.HasGateway
                ? $"try: curl {ingress.Url}{ingress.HintPath}"
                : $"no Gateway selects istio: ingressgateway; add one (and a VirtualService) to serve on {ingress.Url}");
            console.WriteLine("Ctrl-C stops everything.");
            await Task.Delay(Timeout.InfiniteTimeSpan, time, stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Ctrl-C or SIGTERM, during startup or after: stop below.
        }
        catch (StartupException e)
        {
            await error.WriteLineAsync($"bowline up: {e.Message}").ConfigureAwait(false);
            exitCode = 1;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException)
        {
            // A workload's command that cannot be executed, a log file that cannot be opened.
            await error.WriteLineAsync($"bowline up: could not start the mesh: {e.Message}").ConfigureAwait(false);
            exitCode = 1;
        }
        finally
        {
            await stopping.CancelAsync().ConfigureAwait(false);
            await output.WriteLineAsync("stopping...").ConfigureAwait(false);
            var summary = await session.StopAsync().ConfigureAwait(false);
            await output.WriteLineAsync($"bowline up: {summary}").ConfigureAwait(false);
            stopped.TrySetResult();
            AppDomain.CurrentDomain.ProcessExit -= holdExit;
        }
        return exitCode;
    }
}
