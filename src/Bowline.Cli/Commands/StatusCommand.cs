using System.CommandLine;
using Bowline.Cli.LocalMesh;

namespace Bowline.Cli.Commands;

/// <summary><c>bowline status</c>: what the last (or a given) <c>bowline up</c> runs, and whether each process is alive.</summary>
internal static class StatusCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print status.json with an \"alive\" flag per process, for scripts." };
        var state = new Option<string?>("--state") { Description = "State directory of a bowline up. Default: the last one started (~/.bowline/last-up)." };

        var command = new Command("status", "Show what bowline up runs where: workloads, sidecars, ports, pids, the control plane and the ingress.")
        {
            json, state,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var stateDirectory = result.GetValue(state) is { } given ? Path.GetFullPath(given) : StatusStore.ReadLastUp();
            if (stateDirectory is null)
            {
                await Console.Error.WriteLineAsync("bowline status: nothing is running (no bowline up has run yet; give --state DIR)").ConfigureAwait(false);
                return 1;
            }
            var statusFile = new StateLayout(stateDirectory).StatusFile;
            if (StatusStore.Read(statusFile) is not { } status)
            {
                await Console.Error.WriteLineAsync($"bowline status: nothing is running (no {statusFile})").ConfigureAwait(false);
                return 1;
            }
            status = WithLiveness(status);
            if (status.Alive != true)
            {
                await Console.Error.WriteLineAsync($"bowline status: nothing is running (bowline up pid {status.Pid} is gone; {statusFile} is stale)").ConfigureAwait(false);
                return 1;
            }
            if (result.GetValue(json))
            {
                await Console.Out.WriteLineAsync(StatusStore.Serialize(status).AsMemory(), cancellationToken).ConfigureAwait(false);
            }
            else
            {
                MeshTable.Write(MeshTable.CreateConsole(), status);
            }
            return 0;
        });
        return command;
    }

    private static MeshStatus WithLiveness(MeshStatus status) => status with
    {
        Alive = ProcessProbe.IsAlive(status.Pid),
        ControlPlane = status.ControlPlane with { Alive = ProcessProbe.IsAlive(status.ControlPlane.Pid) },
        Ingress = status.Ingress with { Alive = ProcessProbe.IsAlive(status.Ingress.Pid) },
        Workloads = status.Workloads.Select(w => w with
        {
            App = w.App with { Alive = ProcessProbe.IsAlive(w.App.Pid) },
            Sidecar = w.Sidecar with { Alive = ProcessProbe.IsAlive(w.Sidecar.Pid) },
        }).ToList(),
    };
}
