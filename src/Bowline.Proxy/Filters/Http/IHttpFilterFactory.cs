using Bowline.Proxy.Stats;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;

namespace Bowline.Proxy.Filters.Http;

/// <summary>What factories may build filters from: the proxy's long-lived services.</summary>
/// <param name="Direction">The listener's traffic_direction: which side of the request the chain is (Istio's stats reporter).</param>
internal sealed record FilterFactoryContext(ProxyStats Stats, TimeProvider Time, Random Random, ILoggerFactory Loggers, string StatPrefix,
    Envoy.Config.Core.V3.TrafficDirection Direction = Envoy.Config.Core.V3.TrafficDirection.Unspecified);

/// <summary>
/// Envoy's filter factory: turns one filter's proto config into an immutable <see cref="IHttpFilter"/>, once per config
/// update, and a route's <c>typed_per_filter_config</c> for it into a compiled override. Invalid or unsupported config
/// throws <see cref="Configuration.ProxyConfigException"/> (a NACK naming the field).
/// </summary>
internal interface IHttpFilterFactory
{
    /// <summary>The type URL of the filter's <c>typed_config</c>.</summary>
    string ConfigTypeUrl { get; }

    /// <summary>The type URL of its per-route override, or null when the filter has none.</summary>
    string? PerRouteTypeUrl { get; }

    IHttpFilter Create(string name, Any config, FilterFactoryContext context, string where);

    /// <summary>Compiles a per-route or per-virtual-host override; the filter reads it back with <see cref="Bowline.Proxy.Http.HttpStream.FilterConfig{T}"/>.</summary>
    object CompilePerRoute(Any config, string where) =>
        throw new Configuration.ProxyConfigException($"{where}: {ConfigTypeUrl} takes no per-route configuration");
}
