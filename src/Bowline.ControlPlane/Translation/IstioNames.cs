namespace Bowline.ControlPlane.Translation;

/// <summary>Istio's resource names, which operators already read fluently in <c>proxy-config</c> output.</summary>
internal static class IstioNames
{
    public const string VirtualInbound = "virtualInbound";

    /// <summary>Istio's cluster with no endpoints: where routes to hosts, ports or subsets the mesh lacks are sent (503).</summary>
    public const string BlackHoleCluster = "BlackHoleCluster";

    /// <summary>The route configuration of an explicit (HTTP_PROXY) outbound listener: every service, by <c>host:port</c>.</summary>
    public const string HttpProxyRoute = "http_proxy";

    public static string OutboundCluster(int port, string? subset, string host) => $"outbound|{port}|{subset}|{host}";

    public static string InboundCluster(int port) => $"inbound|{port}||";

    public static string Listener(string address, int port) => $"{address}_{port}";

    public static string GatewayRoute(int port) => $"http.{port}";

    /// <summary>The route configuration of one HTTPS server of a Gateway (Istio's gatewayRDSRouteName).</summary>
    public static string GatewayHttpsRoute(int port, string portName, string gateway, string ns) => $"https.{port}.{portName}.{gateway}.{ns}";
}
