using System.Globalization;
using System.Net;

namespace Bowline.Cli.LocalMesh;

/// <summary>The supervised ingress gateway: a <c>bowline proxy --gateway</c> with the labels of Istio's ingress gateway.</summary>
internal sealed class GatewayUnit
{
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);

    private readonly StateLayout _state;
    private readonly SupervisorContext _context;

    public GatewayUnit(IngressPlan plan, BowlineExecutable self, ControlPlaneEndpoint xds, StateLayout state, SupervisorContext context)
    {
        Plan = plan;
        _state = state;
        _context = context;
        // Istio's ingress gateway runs as istio-ingressgateway-service-account and calls sidecars over mesh mTLS.
        var token = state.IssueToken("istio-ingressgateway", "istio-system", "istio-ingressgateway-service-account");
        var launch = self.Launch([.. Arguments(plan, xds), "--service-account", "istio-ingressgateway-service-account", "--ca-token-file", token], state.Root, LogFile);
        Process = new SupervisedProcess("ingress gateway", () => launch, context);
    }

    public IngressPlan Plan { get; }

    public SupervisedProcess Process { get; }

    private string LogFile => _state.LogFile("ingressgateway.log");

    /// <returns>Whether it accepts on the ingress port; when not, a warning with its log tail is already printed.</returns>
    public async Task<bool> StartAsync(CancellationToken cancellationToken)
    {
        Process.Start(cancellationToken);
        if (!Plan.HasGateway)
        {
            // Nothing to listen on until a Gateway selects it, as in Istio; there is nothing to wait for.
            return true;
        }
        var first = Process.Current!;
        var probe = Plan.Address.Equals(IPAddress.Any) ? IPAddress.Loopback : Plan.Address.Equals(IPAddress.IPv6Any) ? IPAddress.IPv6Loopback : Plan.Address;
        if (!await Readiness.WaitForTcpAsync(probe, Plan.Port, StartTimeout, () => first.HasExited, _context.Time, cancellationToken).ConfigureAwait(false))
        {
            var why = first.HasExited ? $"exited with code {first.ExitCode}" : $"does not accept on {Plan.Url} after {StartTimeout.TotalSeconds:0} s";
            await _context.Console.WriteLineAsync($"warning: the ingress gateway {why}; {LogFile}:{Environment.NewLine}{LogTail.Read(LogFile)}").ConfigureAwait(false);
            return false;
        }
        return true;
    }

    public IngressStatus Status() => new(Plan.Url, Process.IsRunning ? Process.Current?.Id : null, Plan.Admin);

    private static List<string> Arguments(IngressPlan plan, ControlPlaneEndpoint xds)
    {
        var arguments = new List<string>
        {
            "proxy", "--gateway",
            "--node-id", "router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local",
            "--workload", "istio-ingressgateway",
            "--namespace", "istio-system",
        };
        arguments.AddRange(xds.ProxyArguments());
        foreach (var (key, value) in IngressPlan.Labels)
        {
            arguments.AddRange(["--label", $"{key}={value}"]);
        }
        arguments.AddRange(["--admin-port", Port(plan.AdminPort), "--status-port", "0", "--bind", plan.Address.ToString(), "--drain-seconds", WorkloadUnit.DrainSeconds]);
        foreach (var (server, listen) in plan.GatewayPorts)
        {
            arguments.AddRange(["--gateway-port", $"{Port(server)}={Port(listen)}"]);
        }
        return arguments;
    }

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);
}
