namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>Istio <c>ServiceEntry</c>: hosts, ports, resolution and endpoints.</summary>
internal static class ServiceEntryParser
{
    public static MeshResource? Parse(ResourceMeta meta, FieldReader spec)
    {
        var hosts = spec.StringList("hosts", required: true);
        if (hosts.Count == 0)
        {
            spec.Error("hosts", "at least one host is required");
        }
        spec.StringList("addresses");
        var ports = new List<ServicePort>();
        foreach (var port in spec.MapList("ports", required: true))
        {
            var number = port.Int("number", required: true, min: 1, max: 65535);
            var name = port.String("name") ?? "";
            var protocol = port.String("protocol");
            var target = port.Int("targetPort", min: 1, max: 65535);
            port.Finish();
            if (number is { } n && ports.Any(p => p.Number == n))
            {
                port.Error("number", $"port {n} is listed twice; each port number may appear once");
            }
            else if (number is { } n2)
            {
                ports.Add(new ServicePort(n2, name, target, ServicePort.ProtocolFrom(protocol, name)));
            }
        }
        var location = spec.String("location");
        if (location is not (null or "MESH_INTERNAL" or "MESH_EXTERNAL"))
        {
            spec.Error("location", $"'{location}' must be MESH_INTERNAL or MESH_EXTERNAL");
        }
        var resolution = spec.String("resolution") ?? "NONE";
        if (resolution is not ("STATIC" or "NONE" or "DNS" or "DNS_ROUND_ROBIN"))
        {
            spec.Error("resolution", $"'{resolution}' must be NONE, STATIC, DNS or DNS_ROUND_ROBIN");
        }
        else if (resolution is not "STATIC")
        {
            spec.Error("resolution", $"resolution {resolution} is not supported by Bowline yet; use STATIC with endpoints or a workloadSelector");
        }
        var endpoints = new List<ServiceEntryEndpoint>();
        foreach (var endpoint in spec.MapList("endpoints"))
        {
            var address = endpoint.String("address", required: true);
            var endpointPorts = endpoint.IntMap("ports", 1, 65535);
            var labels = endpoint.StringMap("labels");
            var weight = endpoint.Int("weight", min: 0, max: 1 << 24) ?? 1;
            endpoint.String("serviceAccount");
            endpoint.String("network");
            endpoint.String("locality");
            endpoint.Finish();
            if (address is not null && !System.Net.IPAddress.TryParse(address, out _))
            {
                endpoint.Error("address", $"'{address}' is not an IP address; resolution DNS is not supported yet");
            }
            else if (address is not null)
            {
                endpoints.Add(new ServiceEntryEndpoint(address, endpointPorts, labels, weight == 0 ? 1 : weight));
            }
        }
        IReadOnlyDictionary<string, string>? selector = null;
        if (spec.Map("workloadSelector") is { } workloadSelector)
        {
            selector = workloadSelector.StringMap("labels");
            workloadSelector.Finish();
        }
        spec.StringList("exportTo");
        spec.StringList("subjectAltNames");
        return new ServiceEntry(meta, hosts, ports, resolution, endpoints, selector);
    }
}
