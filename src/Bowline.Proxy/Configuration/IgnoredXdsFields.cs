namespace Bowline.Proxy.Configuration;

/// <summary>
/// xDS fields the proxy accepts without acting on them, each with the reason it is safe to. Everything not on this
/// list and not implemented is NACKed (see <see cref="XdsFields"/>). Keep docs/xds-support.md in step.
/// </summary>
internal static class IgnoredXdsFields
{
    private static readonly Dictionary<string, string> Reasons = new(StringComparer.Ordinal)
    {
        ["envoy.config.listener.v3.Listener.traffic_direction"] = "informational: Envoy uses it for stats and tracing only",
        ["envoy.config.listener.v3.FilterChain.name"] = "a label for logs",
        ["envoy.config.listener.v3.Filter.name"] = "the typed_config's type URL selects the filter",
        ["envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.codec_type"] = "the listener always detects HTTP/1.1 and HTTP/2 (Envoy's AUTO)",
        ["envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.use_remote_address"] = "x-forwarded-for is passed through untouched; trusting it is not a decision the proxy makes yet",
        ["envoy.config.route.v3.RouteConfiguration.validate_clusters"] = "handled: a route to a missing cluster answers 503 NC, Envoy's behaviour with validation off",
        ["envoy.config.route.v3.VirtualHost.name"] = "a label for logs",
        ["envoy.config.route.v3.Route.name"] = "a label for logs and stats",
        ["envoy.config.route.v3.Decorator.propagate"] = "the operation names this proxy's span; x-envoy-decorator-operation is not sent upstream (it only renames a next Envoy's span)",
        ["envoy.config.route.v3.Route.stat_prefix"] = "per-route stats (vhost.<name>.route.<prefix>.*) are not kept yet; the cluster and listener stats count the same requests",
        ["envoy.config.cluster.v3.Cluster.respect_dns_ttl"] = "the operating system's resolver does not report TTLs; names are re-resolved every dns_refresh_rate (Envoy's default 5 s)",
        ["envoy.config.route.v3.Route.metadata"] = "opaque to the data path (Istio puts its config provenance here)",
        ["envoy.config.route.v3.RouteAction.max_grpc_timeout"] = "Istio sends 0 (unlimited), which is also what grpc-timeout without it means to Bowline",
        ["envoy.config.route.v3.RouteAction.max_stream_duration"] = "Istio sends max_stream_duration 0 with grpc_timeout_header_max 0: no limit, Bowline's behaviour",
        ["envoy.config.core.v3.Http2ProtocolOptions.max_concurrent_streams"] = "SocketsHttpHandler follows the server's SETTINGS_MAX_CONCURRENT_STREAMS and opens more connections past it; a lower client cap is not expressible",
        ["envoy.config.cluster.v3.Cluster.alt_stat_name"] = "stats use the cluster name",
        ["envoy.config.cluster.v3.Cluster.metadata"] = "opaque to the data path",
        ["envoy.config.endpoint.v3.LbEndpoint.metadata"] = "opaque to the data path (Istio carries workload labels here)",
        ["envoy.config.endpoint.v3.LocalityLbEndpoints.locality"] = "locality names are informational; priority decides failover",
        ["envoy.config.endpoint.v3.LocalityLbEndpoints.load_balancing_weight"] = "locality-weighted balancing is not enabled by any cluster Bowline accepts, and Envoy ignores the weight then",
        ["envoy.config.core.v3.ConfigSource.resource_api_version"] = "v3 is the only version spoken",
        ["envoy.config.core.v3.ConfigSource.initial_fetch_timeout"] = "resources warm when they arrive",
    };

    public static bool IsIgnored(string message, string field) => Reasons.ContainsKey($"{message}.{field}");

    /// <summary>Every ignored field and why, for the docs and for <c>/server_info</c>.</summary>
    public static IReadOnlyDictionary<string, string> All => Reasons;
}
