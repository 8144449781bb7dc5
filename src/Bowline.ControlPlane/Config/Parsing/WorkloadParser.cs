namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>Bowline's <c>Workload</c>: what <c>bowline up</c> runs beside a sidecar.</summary>
internal static class WorkloadParser
{
    public static MeshResource? Parse(ResourceMeta meta, FieldReader spec)
    {
        var serviceAccount = spec.String("serviceAccount");
        var project = spec.String("project");
        var command = spec.StringList("command");
        var args = spec.StringList("args");
        var workingDir = spec.String("workingDir");
        var env = new List<WorkloadEnv>();
        foreach (var item in spec.MapList("env"))
        {
            var name = item.String("name", required: true);
            var value = item.String("value") ?? "";
            item.Finish();
            if (name is not null)
            {
                env.Add(new WorkloadEnv(name, value));
            }
        }
        var ports = new List<int>();
        foreach (var port in spec.MapList("ports"))
        {
            var number = port.Int("containerPort", required: true, min: 1, max: 65535);
            port.String("name");
            port.String("protocol");
            port.Finish();
            if (number is { } n)
            {
                ports.Add(n);
            }
        }
        if ((project is null) == (command.Count == 0))
        {
            spec.Error("give exactly one of project (a .NET project to build and run) or command (an executable and its arguments)");
            return null;
        }
        return new Workload(meta, serviceAccount, project, command, args, env, ports, workingDir);
    }
}
