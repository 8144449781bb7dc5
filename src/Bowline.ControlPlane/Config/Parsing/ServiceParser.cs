namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>Kubernetes <c>v1 Service</c>: the fields that matter to a mesh (ports, selector); the rest is accepted and has no effect.</summary>
internal static class ServiceParser
{
    public static MeshResource? Parse(ResourceMeta meta, FieldReader spec)
    {
        var ports = new List<ServicePort>();
        var numbers = new HashSet<int>();
        foreach (var port in spec.MapList("ports", required: true))
        {
            var number = port.Int("port", required: true, min: 1, max: 65535);
            var name = port.String("name") ?? "";
            var appProtocol = port.String("appProtocol");
            var protocol = port.String("protocol") ?? "TCP";
            if (protocol is not ("TCP" or "UDP" or "SCTP"))
            {
                port.Error("protocol", $"'{protocol}' is not a Kubernetes port protocol; use TCP");
            }
            int? target = null;
            var targetText = port.String("targetPort");
            if (targetText is not null)
            {
                if (int.TryParse(targetText, out var t) && t is > 0 and < 65536)
                {
                    target = t;
                }
                else
                {
                    port.Error("targetPort", $"'{targetText}': named target ports are not supported by Bowline yet; give the number");
                }
            }
            port.Int("nodePort");
            port.Finish();
            if (number is { } n && !numbers.Add(n))
            {
                port.Error("port", $"port {n} is listed twice; each port number may appear once");
            }
            else if (number is { } n2)
            {
                // A UDP or SCTP port keeps its transport: no name prefix makes it HTTP or TCP.
                ports.Add(new ServicePort(n2, name, target, protocol is "UDP" or "SCTP" ? protocol : ServicePort.ProtocolFrom(appProtocol, name)));
            }
        }
        var selector = spec.StringMap("selector");
        // Fields of the Kubernetes Service spec that do not change mesh routing.
        foreach (var key in new[] { "type", "clusterIP", "sessionAffinity", "externalTrafficPolicy", "internalTrafficPolicy", "ipFamilyPolicy", "publishNotReadyAddresses" })
        {
            spec.String(key);
        }
        spec.StringList("clusterIPs");
        spec.StringList("ipFamilies");
        if (spec.Has("externalName"))
        {
            spec.Unsupported("externalName", "an ExternalName Service");
        }
        return new KubernetesService(meta, ports, selector);
    }
}
