using System.CommandLine;
using System.Net;
using Bowline.Cli.LocalMesh;

namespace Bowline.Cli.Commands;

/// <summary><c>bowline up DIR</c>: the local mesh, a control plane and every workload of DIR with its sidecar, on this machine.</summary>
internal static class UpCommand
{
    public static Command Create()
    {
        var directory = new Argument<string>("dir") { Description = "Directory of Workloads, Services and Istio config (top-level *.yaml/*.yml)." };
        var ingress = new Option<string>("--ingress") { Description = "Address the ingress gateway listens on; port 0 picks a free one.", DefaultValueFactory = _ => "127.0.0.1:8080" };
        var xdsPort = new Option<int>("--xds-port") { Description = "The control plane's plaintext xDS port, on loopback; 0 picks a free one.", DefaultValueFactory = _ => 15010 };
        var secureXdsPort = new Option<int>("--secure-xds-port") { Description = "The control plane's xDS and CA port over TLS, which every sidecar and the gateway use; 0 picks a free one.", DefaultValueFactory = _ => 15012 };
        var monitoringPort = new Option<int>("--monitoring-port") { Description = "The control plane's monitoring port (/ready, /metrics); 0 picks a free one.", DefaultValueFactory = _ => 15014 };
        var state = new Option<string?>("--state") { Description = "State directory: logs, the file-backed registry, build output, status.json. Default: DIR/.bowline." };
        var noBuild = new Option<bool>("--no-build") { Description = "Run the last build of each workload project instead of building it first." };

        var command = new Command("up", "Run the mesh of DIR on this machine: control plane, each workload with its sidecar, the ingress gateway. Ctrl-C stops all of it.")
        {
            directory, ingress, xdsPort, secureXdsPort, monitoringPort, state, noBuild,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var dir = Path.GetFullPath(result.GetValue(directory)!);
            if (!IPEndPoint.TryParse(result.GetValue(ingress)!, out var ingressEndpoint) || !result.GetValue(ingress)!.Contains(':', StringComparison.Ordinal))
            {
                await Console.Error.WriteLineAsync($"bowline up: --ingress {result.GetValue(ingress)} is not ADDRESS:PORT (e.g. 127.0.0.1:8080)").ConfigureAwait(false);
                return 2;
            }
            var options = new UpOptions(
                dir,
                ingressEndpoint,
                result.GetValue(xdsPort),
                result.GetValue(secureXdsPort),
                result.GetValue(monitoringPort),
                Path.GetFullPath(result.GetValue(state) ?? Path.Combine(dir, ".bowline")),
                result.GetValue(noBuild));
            var runner = new LocalMeshRunner(TimeProvider.System, MeshTable.CreateConsole(), Console.Out, Console.Error);
            return await runner.RunAsync(options, cancellationToken).ConfigureAwait(false);
        });
        return command;
    }
}
