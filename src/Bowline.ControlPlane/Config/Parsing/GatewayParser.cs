namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>Istio <c>Gateway</c>: the servers (port, protocol, hosts) a selected gateway proxy exposes.</summary>
internal static class GatewayParser
{
    public static MeshResource? Parse(ResourceMeta meta, FieldReader spec)
    {
        var selector = spec.StringMap("selector");
        var servers = new List<GatewayServer>();
        foreach (var server in spec.MapList("servers", required: true))
        {
            var port = server.Map("port", required: true);
            int? number = null;
            string name = "", protocol = "HTTP";
            if (port is not null)
            {
                number = port.Int("number", required: true, min: 1, max: 65535);
                name = port.String("name") ?? "";
                protocol = (port.String("protocol", required: true) ?? "HTTP").ToUpperInvariant();
                port.Int("targetPort");
                port.Finish();
                if (protocol is not ("HTTP" or "HTTP2" or "GRPC"))
                {
                    port.Error("protocol", $"gateway servers with protocol {protocol} are not supported by Bowline yet; use HTTP, HTTP2 or GRPC");
                }
            }
            var hosts = server.StringList("hosts", required: true);
            server.Unsupported("tls", "TLS on gateway servers");
            server.String("name");
            server.String("bind");
            server.String("defaultEndpoint");
            server.Finish();
            if (number is { } n)
            {
                servers.Add(new GatewayServer(n, name, protocol, hosts));
            }
        }
        return new Gateway(meta, selector, servers);
    }
}
