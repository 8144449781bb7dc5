using Envoy.Config.Core.V3;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.ControlPlane.Tests.Infrastructure;

/// <summary>xDS nodes as Bowline's sidecar, gateway and a proxyless gRPC client send them.</summary>
internal static class TestNodes
{
    /// <summary>The productpage sidecar in explicit mode: outbound proxy on 15001, inbound 9080 accepted on 15006 and forwarded to the app on 19080.</summary>
    public static Node ProductpageSidecar() => new()
    {
        Id = "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local",
        Cluster = "productpage.default",
        Metadata = Struct(
            ("NAME", Value.ForString("productpage-v1")),
            ("NAMESPACE", Value.ForString("default")),
            ("LABELS", Value.ForStruct(Struct(("app", Value.ForString("productpage")), ("version", Value.ForString("v1"))))),
            ("BOWLINE_BIND_ADDRESS", Value.ForString("127.0.0.1")),
            ("BOWLINE_OUTBOUND_PORT", Value.ForString("15001")),
            ("BOWLINE_INBOUND_PORTS", Value.ForStruct(Struct(("9080", Value.ForString("15006:19080")))))),
    };

    /// <summary>
    /// A sidecar of workload <paramref name="app"/>-<paramref name="version"/> in namespace default with the given
    /// inbound ports, each accepted on 15000 + its number modulo 1000 + 300 (9080 on 15380) and forwarded to the app on
    /// 19000 + the same.
    /// </summary>
    public static Node Sidecar(string app, string version, params int[] inboundPorts) => new()
    {
        Id = $"sidecar~127.0.0.1~{app}-{version}.default~default.svc.cluster.local",
        Metadata = Struct(
            ("NAME", Value.ForString($"{app}-{version}")),
            ("NAMESPACE", Value.ForString("default")),
            ("LABELS", Value.ForStruct(Struct(("app", Value.ForString(app)), ("version", Value.ForString(version))))),
            ("BOWLINE_BIND_ADDRESS", Value.ForString("127.0.0.1")),
            ("BOWLINE_OUTBOUND_PORT", Value.ForString("15001")),
            ("BOWLINE_INBOUND_PORTS", Value.ForStruct(Struct(inboundPorts.Select(p => (p.ToString(System.Globalization.CultureInfo.InvariantCulture), Value.ForString($"{SidecarListenPort(p)}:{19000 + (p % 1000) + 300}"))).ToArray())))),
    };

    /// <summary>Where <see cref="Sidecar"/> accepts a container port.</summary>
    public static int SidecarListenPort(int containerPort) => 15000 + (containerPort % 1000) + 300;

    /// <summary>The ingress gateway: Istio's <c>router~</c> id, label <c>istio: ingressgateway</c>, Gateway port 8080 bound on 18080.</summary>
    public static Node IngressGateway() => new()
    {
        Id = "router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local",
        Cluster = "istio-ingressgateway.istio-system",
        // No NAMESPACE: it comes from the id (istio-system), and Gateways select gateway proxies in any namespace.
        Metadata = Struct(
            ("LABELS", Value.ForStruct(Struct(("istio", Value.ForString("ingressgateway"))))),
            ("BOWLINE_BIND_ADDRESS", Value.ForString("127.0.0.1")),
            ("BOWLINE_GATEWAY_PORTS", Value.ForStruct(Struct(("8080", Value.ForString("18080")))))),
    };

    /// <summary>A proxyless gRPC client in namespace default, marked as Istio marks them (<c>GENERATOR: grpc</c>).</summary>
    public static Node ProxylessGrpc() => new()
    {
        Id = "sidecar~127.0.0.1~grpc-client.default~default.svc.cluster.local",
        UserAgentName = "gRPC C-core",
        Metadata = Struct(
            ("GENERATOR", Value.ForString("grpc")),
            ("NAMESPACE", Value.ForString("default"))),
    };

    /// <summary>A gRPC client whose bootstrap names only its node id: no <c>GENERATOR</c>, no metadata, just the user agent its library sends.</summary>
    public static Node BareGrpcClient(string userAgentName) => new()
    {
        Id = "grpc-client-7d4f",
        UserAgentName = userAgentName,
        UserAgentVersion = "1.14.1",
    };

    private static Struct Struct(params (string Key, Value Value)[] fields)
    {
        var result = new Struct();
        foreach (var (key, value) in fields)
        {
            result.Fields[key] = value;
        }
        return result;
    }
}
