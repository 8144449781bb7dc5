using Spectre.Console;
using Spectre.Console.Rendering;

namespace Bowline.Cli.LocalMesh;

/// <summary>Renders a <see cref="MeshStatus"/> for people: one row per workload, then the shared parts.</summary>
internal static class MeshTable
{
    /// <summary>
    /// The console to render on. Spectre assumes 80 columns when output is not a terminal, which wraps every cell of a
    /// log file or a pipe; a wide virtual width keeps one line per value there.
    /// </summary>
    public static IAnsiConsole CreateConsole()
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings());
        if (Console.IsOutputRedirected)
        {
            console.Profile.Width = 200;
        }
        return console;
    }

    public static void Write(IAnsiConsole console, MeshStatus status)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumns("workload", "labels", "pid app/sidecar", "app port(s)", "sidecar in / out", "admin");
        foreach (var workload in status.Workloads)
        {
            table.AddRow(
                Cell(workload.Namespace == "default" ? workload.Name : $"{workload.Namespace}/{workload.Name}", workload.State == "running" ? null : workload.State),
                Cell(string.Join(Environment.NewLine, workload.Labels.Select(l => $"{l.Key}={l.Value}"))),
                Cell($"{Pid(workload.App.Pid, workload.App.Alive)}/{Pid(workload.Sidecar.Pid, workload.Sidecar.Alive)}", workload.Restarts > 0 ? $"{workload.Restarts} restarts" : null),
                Cell(Ports(workload.App.Ports)),
                Cell($"{Ports(workload.Sidecar.InboundPorts)} / {workload.Sidecar.OutboundPort}"),
                Cell(workload.Sidecar.Admin));
        }
        console.Write(table);
        console.WriteLine($"control plane  xDS {status.ControlPlane.Xds}  monitoring {status.ControlPlane.Monitoring}  pid {Pid(status.ControlPlane.Pid, status.ControlPlane.Alive)}");
        console.WriteLine($"ingress        {status.Ingress.Url}  admin {status.Ingress.Admin}  pid {Pid(status.Ingress.Pid, status.Ingress.Alive)}");
        console.WriteLine($"logs           {status.Logs}");
    }

    private static IRenderable Cell(string text, string? note = null) =>
        note is null ? new Text(text) : new Markup($"{Markup.Escape(text)}\n[grey]{Markup.Escape(note)}[/]");

    private static string Ports(IReadOnlyDictionary<string, int> ports) =>
        string.Join(Environment.NewLine, ports.Select(p => $"{p.Key}->{p.Value}"));

    /// <summary>The pid, marked when <c>bowline status</c> found it gone; <c>-</c> while the process is down.</summary>
    private static string Pid(int? pid, bool? alive) => pid switch
    {
        null => "-",
        _ when alive == false => $"{pid} (gone)",
        _ => pid.Value.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
