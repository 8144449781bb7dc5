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
        foreach (var host in hosts)
        {
            var problem = host == "*" ? "'*' is not a valid ServiceEntry host; name the hosts" : IstioRules.WildcardDomain(host);
            if (problem is not null)
            {
                spec.Error("hosts", problem);
            }
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
            spec.Error("resolution", resolution == "DYNAMIC_DNS"
                ? "resolution DYNAMIC_DNS is not supported by Bowline yet; use DNS with the hosts you need"
                : $"'{resolution}' must be NONE, STATIC, DNS or DNS_ROUND_ROBIN");
        }
        var dns = resolution is "DNS" or "DNS_ROUND_ROBIN";
        var portNames = ports.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var endpoints = new List<ServiceEntryEndpoint>();
        var endpointList = spec.MapList("endpoints");
        foreach (var endpoint in endpointList)
        {
            var address = endpoint.String("address", required: true);
            var endpointPorts = endpoint.IntMap("ports", 1, 65535);
            var labels = endpoint.StringMap("labels");
            var weight = endpoint.Int("weight", min: 0, max: 1 << 24) ?? 1;
            var serviceAccount = endpoint.String("serviceAccount");
            endpoint.String("network");
            var locality = endpoint.String("locality");
            endpoint.Finish();
            if (IstioRules.Labels(labels) is { } labelProblem)
            {
                endpoint.Error("labels", labelProblem);
            }
            if (dns && endpointPorts.Keys.FirstOrDefault(name => !portNames.Contains(name)) is { } unknownPort)
            {
                endpoint.Error("ports", $"port name '{unknownPort}' is not one of the ServiceEntry's ports ({string.Join(", ", portNames)})");
            }
            if (address is null)
            {
                continue;
            }
            var isIp = System.Net.IPAddress.TryParse(address, out _);
            if (dns && !isIp && IstioRules.Fqdn(address) is not null)
            {
                endpoint.Error("address", $"'{address}' is neither an IP address nor a valid DNS name");
            }
            else if (!dns && !isIp)
            {
                endpoint.Error("address", $"'{address}' is not an IP address; a host name endpoint needs resolution DNS or DNS_ROUND_ROBIN");
            }
            else
            {
                endpoints.Add(new ServiceEntryEndpoint(address, endpointPorts, labels, weight == 0 ? 1 : weight) { Locality = string.IsNullOrEmpty(locality) ? null : locality, ServiceAccount = string.IsNullOrEmpty(serviceAccount) ? null : serviceAccount });
            }
        }
        switch (resolution)
        {
            case "NONE" when endpointList.Count > 0:
                spec.Error("endpoints", "resolution NONE takes no endpoints; use STATIC (IP addresses) or DNS (host names)");
                break;
            case "NONE":
                // Istio forwards to the address the client dialled; in explicit (HTTP_PROXY) mode the sidecar never sees one.
                spec.Warning("resolution", "resolution NONE forwards to the address the client dialled, which Bowline's sidecar does not see in explicit (HTTP_PROXY) mode: requests get 503; use resolution DNS to reach the hosts by name");
                break;
            case "DNS" or "DNS_ROUND_ROBIN" when endpointList.Count == 0:
                foreach (var host in hosts.Where(h => IstioRules.Fqdn(h) is not null))
                {
                    spec.Error("hosts", $"'{host}' cannot be resolved: with resolution {resolution} and no endpoints every host must be a DNS name without wildcards");
                }
                break;
            case "DNS_ROUND_ROBIN" when endpointList.Count > 1:
                spec.Error("endpoints", "resolution DNS_ROUND_ROBIN takes at most one endpoint; use DNS for several");
                break;
        }
        IReadOnlyDictionary<string, string>? selector = null;
        if (spec.Map("workloadSelector") is { } workloadSelector)
        {
            selector = workloadSelector.StringMap("labels");
            workloadSelector.Finish();
        }
        if (selector is not null && endpointList.Count > 0)
        {
            spec.Error("workloadSelector", "give only one of workloadSelector or endpoints");
        }
        var exportTo = spec.StringList("exportTo");
        if (IstioRules.ExportTo(exportTo, meta.Namespace, serviceEntry: true) is { } exportProblem)
        {
            spec.Error("exportTo", exportProblem);
        }
        var subjectAltNames = spec.StringList("subjectAltNames");
        return new ServiceEntry(meta, hosts, ports, resolution, endpoints, selector) { Location = location ?? "MESH_EXTERNAL", ExportTo = exportTo, SubjectAltNames = subjectAltNames };
    }
}
