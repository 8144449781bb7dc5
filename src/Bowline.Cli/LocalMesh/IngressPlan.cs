using System.Net;
using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;

namespace Bowline.Cli.LocalMesh;

/// <summary>Where the ingress gateway listens: Gateway server port to the port it binds on the ingress address.</summary>
/// <param name="HasGateway">Whether a Gateway in the directory selects the ingress gateway; without one it has no listener.</param>
/// <param name="HintPath">A path worth a first curl: the first URI match of a VirtualService bound to a gateway.</param>
internal sealed record IngressPlan(IPAddress Address, int Port, IReadOnlyDictionary<int, int> GatewayPorts, int AdminPort, bool HasGateway, string HintPath)
{
    /// <summary>The labels of the ingress gateway's pod in Istio, which Gateway selectors match.</summary>
    public static readonly IReadOnlyDictionary<string, string> Labels = new Dictionary<string, string>
    {
        ["istio"] = "ingressgateway",
        ["app"] = "istio-ingressgateway",
    };

    private const int DefaultServerPort = 8080;

    public string Url => $"http://{Host}:{Port}";

    public string Admin => $"http://{Host}:{AdminPort}/";

    /// <summary>A wildcard bind is reached on loopback.</summary>
    private string Host =>
        Address.Equals(IPAddress.Any) ? "127.0.0.1"
        : Address.Equals(IPAddress.IPv6Any) ? "[::1]"
        : Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{Address}]"
        : Address.ToString();

    /// <summary>
    /// The first server port of the Gateways that select the ingress gateway is served on <paramref name="ingress"/>'s
    /// port (so Istio's bookinfo Gateway on 8080 is reachable wherever the user asked); other server ports on themselves.
    /// </summary>
    public static IngressPlan Create(MeshDirectory mesh, IPEndPoint ingress, FreePorts ports)
    {
        var serverPorts = mesh.Gateways
            .Where(g => g.Selector.Count > 0 && ServiceIndex.Matches(Labels, g.Selector))
            .SelectMany(g => g.Servers.Select(s => s.Port))
            .Distinct()
            .ToList();
        var hasGateway = serverPorts.Count > 0;
        if (!hasGateway)
        {
            serverPorts.Add(DefaultServerPort);
        }
        var port = ingress.Port == 0 ? ports.Pick(ingress.Address) : ingress.Port;
        ports.Reserve(port);
        var gatewayPorts = new Dictionary<int, int> { [serverPorts[0]] = port };
        foreach (var other in serverPorts.Skip(1))
        {
            gatewayPorts.TryAdd(other, other);
            ports.Reserve(other);
        }
        return new IngressPlan(ingress.Address, port, gatewayPorts, ports.Pick(ingress.Address), hasGateway, HintPathOf(mesh.VirtualServices));
    }

    private static string HintPathOf(IReadOnlyList<VirtualService> virtualServices)
    {
        var uri = virtualServices
            .Where(v => v.Gateways.Any(g => g != "mesh"))
            .SelectMany(v => v.Http)
            .SelectMany(r => r.Matches)
            .Select(m => m.Uri)
            .FirstOrDefault(u => u is { Kind: StringMatch.Exact or StringMatch.Prefix });
        return uri?.Value is { Length: > 0 } path && path.StartsWith('/') ? path : "/";
    }
}
