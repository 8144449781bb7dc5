using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Bowline.Xds;

/// <summary>Envoy-shaped JSON for xDS resources (config dumps, golden files, the CLI), with every <c>Any</c> resolvable.</summary>
public static class XdsJson
{
    /// <summary>Every message type Bowline sends inside an <c>Any</c>.</summary>
    public static TypeRegistry Registry { get; } = TypeRegistry.FromFiles(
        Envoy.Config.Listener.V3.ListenerReflection.Descriptor,
        Envoy.Config.Route.V3.RouteReflection.Descriptor,
        Envoy.Config.Cluster.V3.ClusterReflection.Descriptor,
        Envoy.Config.Endpoint.V3.EndpointReflection.Descriptor,
        Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManagerReflection.Descriptor,
        Envoy.Extensions.Filters.Network.TcpProxy.V3.TcpProxyReflection.Descriptor,
        Envoy.Extensions.Filters.Http.Router.V3.RouterReflection.Descriptor,
        Envoy.Extensions.Filters.Http.Fault.V3.FaultReflection.Descriptor,
        Envoy.Extensions.Filters.Http.Cors.V3.CorsReflection.Descriptor,
        Envoy.Extensions.Filters.Http.LocalRatelimit.V3.LocalRateLimitReflection.Descriptor,
        Envoy.Extensions.Retry.Host.PreviousHosts.V3.PreviousHostsReflection.Descriptor,
        Envoy.Extensions.Upstreams.Http.V3.HttpProtocolOptionsReflection.Descriptor,
        Envoy.Extensions.TransportSockets.Tls.V3.SecretReflection.Descriptor,
        Envoy.Extensions.TransportSockets.Tls.V3.TlsReflection.Descriptor,
        Envoy.Extensions.TransportSockets.RawBuffer.V3.RawBufferReflection.Descriptor,
        Envoy.Extensions.Filters.Listener.TlsInspector.V3.TlsInspectorReflection.Descriptor,
        Envoy.Extensions.Filters.Listener.HttpInspector.V3.HttpInspectorReflection.Descriptor,
        Envoy.Extensions.Retry.Priority.PreviousPriorities.V3.PreviousPrioritiesConfigReflection.Descriptor,
        Envoy.Admin.V3.ConfigDumpReflection.Descriptor,
        Envoy.Admin.V3.ConfigDumpSharedReflection.Descriptor,
        Udpa.Type.V1.TypedStructReflection.Descriptor,
        Envoy.Extensions.RateLimitDescriptors.Expr.V3.ExprReflection.Descriptor,
        global::Xds.Type.V3.TypedStructReflection.Descriptor);

    private static readonly JsonFormatter Indented = new(JsonFormatter.Settings.Default.WithTypeRegistry(Registry).WithIndentation());
    private static readonly JsonFormatter Compact = new(JsonFormatter.Settings.Default.WithTypeRegistry(Registry));

    public static string Format(IMessage message, bool indented = true) => (indented ? Indented : Compact).Format(message);
}
