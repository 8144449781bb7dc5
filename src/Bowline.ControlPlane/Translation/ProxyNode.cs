using System.Globalization;
using Bowline.ControlPlane.Registry;
using Bowline.Xds;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.ControlPlane.Translation;

/// <summary>What kind of xDS client a node is; each gets a different set of resources.</summary>
internal enum ProxyKind
{
    /// <summary>A sidecar beside one workload (node id <c>sidecar~...</c>).</summary>
    Sidecar,

    /// <summary>A gateway serving Istio Gateway resources (node id <c>router~...</c>).</summary>
    Gateway,

    /// <summary>
    /// A proxyless gRPC client: node metadata <c>GENERATOR: grpc</c> (as Istio marks them), or recognised by its user
    /// agent or its named LDS subscriptions (<see cref="ProxylessDetection"/>).
    /// </summary>
    ProxylessGrpc,
}

/// <summary>A port the sidecar accepts inbound traffic on, in explicit (no iptables) mode, and where the app listens.</summary>
/// <param name="ContainerPort">The workload's declared port (a Service's targetPort).</param>
/// <param name="ListenPort">Where the sidecar accepts traffic for it.</param>
/// <param name="AppPort">Where the app really listens on loopback.</param>
internal sealed record InboundPort(int ContainerPort, int ListenPort, int AppPort);

/// <summary>A TCP service port (<paramref name="Host"/>:<paramref name="Port"/>) an explicit-mode app reaches on <paramref name="ListenPort"/>.</summary>
internal sealed record OutboundTcpPort(string Host, int Port, int ListenPort);

/// <summary>
/// The identity and shape of a connected proxy, read from the xDS <c>Node</c> it sends (id and metadata), with Istio's
/// metadata names where Istio has one (<c>NAME</c>, <c>NAMESPACE</c>, <c>LABELS</c>, <c>SERVICE_ACCOUNT</c>,
/// <c>INTERCEPTION_MODE</c>, <c>GENERATOR</c>) and <c>BOWLINE_*</c> names for Bowline's explicit mode.
/// </summary>
internal sealed record ProxyNode(
    string Id,
    ProxyKind Kind,
    string Name,
    string Namespace,
    IReadOnlyDictionary<string, string> Labels,
    string? ServiceAccount,
    string BindAddress,
    int? OutboundPort,
    IReadOnlyList<InboundPort> InboundPorts,
    IReadOnlyDictionary<int, int> GatewayPorts)
{
    /// <summary>
    /// True when nothing in the node said what it is (no <c>GENERATOR</c>, no <c>router~</c> id, no sidecar metadata, no
    /// gRPC user agent) and it was taken for a sidecar by default; its requests may still show it is a gRPC client.
    /// </summary>
    public bool KindDefaulted { get; init; }

    /// <summary>
    /// Where the proxy runs, as Istio reads it: the topology labels (<c>topology.kubernetes.io/region</c>, ...) when
    /// they name a region, else <c>node.locality</c>; none when neither is given.
    /// </summary>
    public MeshLocality Locality { get; init; } = MeshLocality.None;

    /// <summary>Explicit mode's outbound TCP: each TCP service port the app reaches by dialing a local port.</summary>
    public IReadOnlyList<OutboundTcpPort> OutboundTcpPorts { get; init; } = [];

    /// <summary>Envoy's <c>node.cluster</c> (Istio's service cluster): the service name a tracer reports spans under.</summary>
    public string ServiceCluster { get; init; } = "";

    /// <summary>Istio's <c>CLUSTER_ID</c> from the node's metadata; Istio's <c>Kubernetes</c> when it names none.</summary>
    public string ClusterId { get; init; } = DefaultClusterId;

    /// <summary>Istio's <c>CLUSTER_ID</c> when a node names none; the cluster every endpoint of this control plane's registry is in.</summary>
    public const string DefaultClusterId = "Kubernetes";

    /// <summary>The same node served as a proxyless gRPC client, once its requests showed it is one.</summary>
    public ProxyNode AsProxyless() => this with { Kind = ProxyKind.ProxylessGrpc, KindDefaulted = false };

    /// <summary>Reads a node; throws <see cref="FormatException"/> with a message naming the bad field.</summary>
    public static ProxyNode From(Envoy.Config.Core.V3.Node node)
    {
        if (string.IsNullOrEmpty(node.Id))
        {
            throw new FormatException("node.id is empty; every xDS client must identify itself");
        }
        var fields = node.Metadata?.Fields ?? new Google.Protobuf.Collections.MapField<string, Value>();
        var idParts = node.Id.Split('~');
        var generator = Text(fields, NodeMetadata.Generator);
        // A GENERATOR names the kind; the others only a sidecar's bootstrap sets, never a gRPC client's.
        var declaresKind = generator is not null || new[] { NodeMetadata.InterceptionMode, NodeMetadata.OutboundPort, NodeMetadata.InboundPorts }.Any(fields.ContainsKey);
        var kind = generator == "grpc" ? ProxyKind.ProxylessGrpc
            : idParts[0] == "router" ? ProxyKind.Gateway
            : !declaresKind && ProxylessDetection.IsGrpcUserAgent(node.UserAgentName) ? ProxyKind.ProxylessGrpc
            : ProxyKind.Sidecar;
        var defaulted = kind == ProxyKind.Sidecar && !declaresKind;

        // Istio's id form: type~ip~name.namespace~namespace.svc.cluster.local.
        var idName = idParts.Length > 2 ? idParts[2] : node.Id;
        var name = Text(fields, NodeMetadata.Name) ?? idName.Split('.')[0];
        var ns = Text(fields, NodeMetadata.Namespace) ?? (idName.Contains('.', StringComparison.Ordinal) ? idName.Split('.', 2)[1] : "default");

        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (fields.TryGetValue(NodeMetadata.Labels, out var labelValue) && labelValue.StructValue is { } labelStruct)
        {
            foreach (var (key, value) in labelStruct.Fields)
            {
                labels[key] = value.StringValue;
            }
        }

        var inbound = new List<InboundPort>();
        if (fields.TryGetValue(NodeMetadata.InboundPorts, out var inboundValue) && inboundValue.StructValue is { } inboundStruct)
        {
            foreach (var (key, value) in inboundStruct.Fields)
            {
                // "9080": "41000:41001" — container port: sidecar listen port and app port.
                var parts = value.StringValue.Split(':');
                if (!int.TryParse(key, out var containerPort) || parts.Length != 2 || !int.TryParse(parts[0], out var listen) || !int.TryParse(parts[1], out var app))
                {
                    throw new FormatException($"node.metadata.{NodeMetadata.InboundPorts}.{key} = '{value.StringValue}': expected \"<listen port>:<app port>\"");
                }
                inbound.Add(new InboundPort(containerPort, listen, app));
            }
        }
        inbound.Sort((a, b) => a.ContainerPort.CompareTo(b.ContainerPort));

        var gatewayPorts = new Dictionary<int, int>();
        if (fields.TryGetValue(NodeMetadata.GatewayPorts, out var gatewayValue) && gatewayValue.StructValue is { } gatewayStruct)
        {
            foreach (var (key, value) in gatewayStruct.Fields)
            {
                if (!int.TryParse(key, out var declared) || !int.TryParse(value.StringValue, NumberStyles.Integer, CultureInfo.InvariantCulture, out var bound))
                {
                    throw new FormatException($"node.metadata.{NodeMetadata.GatewayPorts}.{key} = '{value.StringValue}': expected a port number");
                }
                gatewayPorts[declared] = bound;
            }
        }

        var outboundTcp = new List<OutboundTcpPort>();
        if (fields.TryGetValue(NodeMetadata.OutboundTcpPorts, out var tcpValue) && tcpValue.StructValue is { } tcpStruct)
        {
            foreach (var (key, value) in tcpStruct.Fields)
            {
                var colon = key.LastIndexOf(':');
                if (colon <= 0 || !int.TryParse(key[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var servicePort)
                    || !int.TryParse(value.StringValue, NumberStyles.None, CultureInfo.InvariantCulture, out var listen))
                {
                    throw new FormatException($"node.metadata.{NodeMetadata.OutboundTcpPorts}.{key} = '{value.StringValue}': expected \"<host>:<port>\": \"<local port>\"");
                }
                outboundTcp.Add(new OutboundTcpPort(key[..colon], servicePort, listen));
            }
        }
        outboundTcp.Sort((a, b) => a.ListenPort.CompareTo(b.ListenPort));
        var taken = new HashSet<int>();
        foreach (var local in outboundTcp.Select(t => t.ListenPort))
        {
            if (!taken.Add(local) || inbound.Any(i => i.ListenPort == local) || Text(fields, NodeMetadata.OutboundPort) == local.ToString(CultureInfo.InvariantCulture))
            {
                throw new FormatException($"node.metadata.{NodeMetadata.OutboundTcpPorts}: local port {local} is given twice (or is also the outbound or an inbound port); each TCP service port needs a port of its own");
            }
        }

        int? outbound = null;
        if (Text(fields, NodeMetadata.OutboundPort) is { } outboundText)
        {
            outbound = int.TryParse(outboundText, out var p) ? p : throw new FormatException($"node.metadata.{NodeMetadata.OutboundPort} = '{outboundText}': expected a port number");
        }

        return new ProxyNode(node.Id, kind, name, ns, labels, Text(fields, NodeMetadata.ServiceAccount), Text(fields, NodeMetadata.BindAddress) ?? "0.0.0.0", outbound, inbound, gatewayPorts)
        {
            KindDefaulted = defaulted,
            OutboundTcpPorts = outboundTcp,
            ServiceCluster = node.Cluster ?? "",
            ClusterId = Text(fields, NodeMetadata.ClusterId) ?? DefaultClusterId,
            Locality = MeshLocality.FromLabels(labels) ?? (node.Locality is { } locality ? new MeshLocality(locality.Region, locality.Zone, locality.SubZone) : MeshLocality.None),
        };
    }

    private static string? Text(Google.Protobuf.Collections.MapField<string, Value> fields, string key) =>
        fields.TryGetValue(key, out var value) && value.KindCase == Value.KindOneofCase.StringValue && value.StringValue.Length > 0 ? value.StringValue : null;
}
