using System.Net;
using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;

namespace Bowline.Cli.LocalMesh;

/// <summary>Turns the Workloads of a mesh directory into <see cref="WorkloadPlan"/>s: ports, registry ports and the app command.</summary>
internal static class WorkloadPlanner
{
    /// <param name="programs">Project path (absolute) to the built dll.</param>
    public static IReadOnlyList<WorkloadPlan> Plan(MeshDirectory mesh, IReadOnlyDictionary<string, string> programs, FreePorts ports, StateLayout state)
    {
        var duplicateNames = mesh.Workloads.GroupBy(w => w.Meta.Name).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet();
        var plans = new List<WorkloadPlan>();
        foreach (var workload in mesh.Workloads)
        {
            var id = duplicateNames.Contains(workload.Meta.Name) ? $"{workload.Meta.Namespace}.{workload.Meta.Name}" : workload.Meta.Name;
            var portPlans = workload.ContainerPorts.Distinct()
                .Select(p => new PortPlan(p, ports.Pick(IPAddress.Loopback), ports.Pick(IPAddress.Loopback)))
                .ToList();
            plans.Add(new WorkloadPlan(
                workload,
                id,
                portPlans,
                OutboundPort: ports.Pick(IPAddress.Loopback),
                AdminPort: ports.Pick(IPAddress.Loopback),
                ServicePorts(workload, portPlans, mesh.Services),
                AppLaunch(workload, programs, state.LogFile($"{id}.app.log")))
            {
                OutboundTcp = OutboundTcp(workload, mesh.Services, ports),
                StatusPort = ports.Pick(IPAddress.Loopback),
            });
        }
        return plans;
    }

    /// <summary>
    /// For every Service of the workload's namespace that selects it, each service port whose target port is one of the
    /// workload's container ports maps, by name, to that container port's sidecar inbound port. The control plane
    /// resolves a WorkloadEntry endpoint port by the service port's name, so peers reach the sidecar, never the app.
    /// </summary>
    private static Dictionary<string, int> ServicePorts(Workload workload, IReadOnlyList<PortPlan> ports, IReadOnlyList<KubernetesService> services)
    {
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var service in services)
        {
            if (service.Meta.Namespace != workload.Meta.Namespace || service.Selector.Count == 0 || !ServiceIndex.Matches(workload.Meta.Labels, service.Selector))
            {
                continue;
            }
            foreach (var servicePort in service.Ports)
            {
                if (ports.FirstOrDefault(p => p.ContainerPort == (servicePort.TargetPort ?? servicePort.Number)) is { } port)
                {
                    result[servicePort.Name] = port.InboundPort;
                }
            }
        }
        return result;
    }

    /// <summary>
    /// Every TCP port of the Services in the workload's namespace (the ones Kubernetes would name in its environment),
    /// each with a loopback port of its own where the sidecar forwards to the service through the mesh.
    /// </summary>
    private static List<OutboundTcpPlan> OutboundTcp(Workload workload, IReadOnlyList<KubernetesService> services, FreePorts ports) =>
        services.Where(s => s.Meta.Namespace == workload.Meta.Namespace)
            .OrderBy(s => s.Meta.Name, StringComparer.Ordinal)
            .SelectMany(s => s.Ports.Where(p => p.IsTcp).Select(p => new OutboundTcpPlan(s.Meta.Name, $"{s.Meta.Name}.{s.Meta.Namespace}.svc.cluster.local", p, ports.Pick(IPAddress.Loopback))))
            .ToList();

    private static LaunchSpec AppLaunch(Workload workload, IReadOnlyDictionary<string, string> programs, string logFile)
    {
        var baseDirectory = MeshDirectory.BaseDirectoryOf(workload);
        var workingDirectory = workload.WorkingDir is { Length: > 0 } dir ? Path.GetFullPath(Path.Combine(baseDirectory, dir)) : baseDirectory;
        if (workload.Project is { } project)
        {
            var dll = programs[ProjectBuilder.ProjectPath(workload, project)];
            return new LaunchSpec(BowlineExecutable.DotnetHost(), [dll, .. workload.Args], workingDirectory, new Dictionary<string, string?>(), logFile);
        }
        // Like a shell in the working directory: a path with a slash is relative to it, a bare name is looked up on PATH.
        var executable = workload.Command[0];
        if (executable.Contains('/', StringComparison.Ordinal) && !Path.IsPathRooted(executable))
        {
            executable = Path.GetFullPath(Path.Combine(workingDirectory, executable));
        }
        return new LaunchSpec(executable, [.. workload.Command.Skip(1), .. workload.Args], workingDirectory, new Dictionary<string, string?>(), logFile);
    }
}
