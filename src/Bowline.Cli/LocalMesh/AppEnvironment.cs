namespace Bowline.Cli.LocalMesh;

/// <summary>The environment an app receives from <c>bowline up</c>; docs/local-mesh.md lists it for app authors.</summary>
internal static class AppEnvironment
{
    public static Dictionary<string, string?> For(WorkloadPlan plan)
    {
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var variable in plan.Workload.Env)
        {
            environment[variable.Name] = variable.Value;
        }
        if (plan.Ports.Count > 0)
        {
            environment["PORT"] = Port(plan.Ports[0].AppPort);
        }
        foreach (var port in plan.Ports)
        {
            environment[$"PORT_{port.ContainerPort}"] = Port(port.AppPort);
        }
        var proxy = $"http://{plan.Outbound}";
        environment["HTTP_PROXY"] = proxy;
        environment["http_proxy"] = proxy;
        // An inherited NO_PROXY (often "localhost,127.0.0.1,...") would send some calls around the sidecar.
        environment["NO_PROXY"] = null;
        environment["no_proxy"] = null;
        environment["POD_NAME"] = plan.Name;
        environment["POD_NAMESPACE"] = plan.Namespace;
        environment["BOWLINE_SIDECAR"] = plan.Outbound;
        // Kubernetes' service environment variables, for TCP ports: the address is the sidecar's local port for it.
        foreach (var service in plan.OutboundTcp.GroupBy(t => t.Service, StringComparer.Ordinal))
        {
            var prefix = service.Key.ToUpperInvariant().Replace('-', '_');
            environment[$"{prefix}_SERVICE_HOST"] = "127.0.0.1";
            environment[$"{prefix}_SERVICE_PORT"] = Port(service.First().ListenPort);
            foreach (var tcp in service.Where(t => t.Port.Name.Length > 0))
            {
                environment[$"{prefix}_SERVICE_PORT_{tcp.Port.Name.ToUpperInvariant().Replace('-', '_')}"] = Port(tcp.ListenPort);
            }
        }
        return environment;
    }

    private static string Port(int port) => port.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
