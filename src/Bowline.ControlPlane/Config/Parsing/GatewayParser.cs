namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>Istio <c>Gateway</c>: the servers (port, protocol, hosts, tls) a selected gateway proxy exposes.</summary>
internal static class GatewayParser
{
    public static MeshResource? Parse(ResourceMeta meta, FieldReader spec)
    {
        var selector = spec.StringMap("selector");
        var servers = new List<GatewayServer>();
        var portNames = new HashSet<string>(StringComparer.Ordinal);
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
                if (protocol is not ("HTTP" or "HTTP2" or "GRPC" or "HTTPS" or "TLS" or "TCP" or "MONGO" or "MYSQL" or "REDIS"))
                {
                    port.Error("protocol", protocol == "UDP"
                        ? "gateway servers cannot proxy UDP; use TCP or TLS"
                        : $"'{protocol}' is not a gateway server protocol; use HTTP, HTTP2, GRPC, HTTPS, TLS, TCP, MONGO, MYSQL or REDIS");
                }
                // Istio's rule: HTTPS servers on one port are told apart by their port names (they name the route configuration).
                if (name.Length > 0 && !portNames.Add(name))
                {
                    port.Error("name", $"port names in servers must be unique: duplicate name {name}");
                }
            }
            var hosts = server.StringList("hosts", required: true);
            var before = server.ErrorCount;
            var tls = GatewayTlsParser.Parse(server, port is null ? null : protocol);
            var serverName = server.String("name");
            server.String("bind");
            server.String("defaultEndpoint");
            server.Finish();
            if (number is { } n && server.ErrorCount == before)
            {
                servers.Add(new GatewayServer(n, name, protocol, hosts) { Tls = tls, Name = string.IsNullOrEmpty(serverName) ? null : serverName });
            }
        }
        return new Gateway(meta, selector, servers);
    }
}
