using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;
using ConfigConstants = Bowline.ControlPlane.Config;

namespace Bowline.ControlPlane.Translation;

/// <summary>Small constructors for the Envoy messages every builder needs.</summary>
internal static class EnvoyBuilders
{
    public const string HttpConnectionManagerFilter = "envoy.filters.network.http_connection_manager";
    public const string RouterFilter = "envoy.filters.http.router";
    public const string FaultFilter = "envoy.filters.http.fault";
    public const string CorsFilter = "envoy.filters.http.cors";
    public const string LocalRateLimitFilter = RateLimitBuilder.FilterName;
    public const string HttpProtocolOptionsKey = Bowline.Xds.ResourceReferences.HttpProtocolOptionsKey;

    public static Address SocketAddress(string ip, int port) => new()
    {
        SocketAddress = new Envoy.Config.Core.V3.SocketAddress { Address = ip, PortValue = (uint)port, Protocol = Envoy.Config.Core.V3.SocketAddress.Types.Protocol.Tcp },
    };

    public static ConfigSource Ads() => new() { Ads = new AggregatedConfigSource(), ResourceApiVersion = ApiVersion.V3 };

    public static HttpFilter Router() => new()
    {
        Name = RouterFilter,
        TypedConfig = Any.Pack(new Envoy.Extensions.Filters.Http.Router.V3.Router()),
    };

    /// <summary>The fault filter with an empty config: inert until a route's typed_per_filter_config gives it a fault (Istio's way).</summary>
    public static HttpFilter Fault() => new()
    {
        Name = FaultFilter,
        TypedConfig = Any.Pack(new Envoy.Extensions.Filters.Http.Fault.V3.HTTPFault()),
    };

    /// <summary>The CORS filter, inert until a route's typed_per_filter_config gives it a policy.</summary>
    public static HttpFilter Cors() => new()
    {
        Name = CorsFilter,
        TypedConfig = Any.Pack(new Envoy.Extensions.Filters.Http.Cors.V3.Cors()),
    };

    /// <summary>
    /// An HTTP connection manager as every sidecar and gateway gets it: Istio's filter order (fault and CORS, then the
    /// local rate limit, all three inert until a route's typed_per_filter_config configures them, then the router), the
    /// mesh's path normalization, and the access log, metrics and tracing that apply to this proxy on this side.
    /// </summary>
    public static HttpConnectionManager Hcm(string statPrefix, Registry.ServiceIndex index, ProxyNode node, Config.TelemetryMode side, Snapshots.SnapshotBuilder snapshot)
    {
        var mesh = index.Config;
        var paths = mesh.Security.Paths;
        var hcm = new HttpConnectionManager
        {
            StatPrefix = statPrefix,
            CodecType = HttpConnectionManager.Types.CodecType.Auto,
            HttpFilters = { Fault(), Cors(), RateLimitBuilder.Filter(), Router() },
            UpgradeConfigs = { new HttpConnectionManager.Types.UpgradeConfig { UpgradeType = "websocket" } },
            // Istio's translation of meshConfig.pathNormalization.
            NormalizePath = paths != ConfigConstants.PathNormalization.None,
            MergeSlashes = paths is ConfigConstants.PathNormalization.MergeSlashes or ConfigConstants.PathNormalization.DecodeAndMergeSlashes,
            PathWithEscapedSlashesAction = paths == ConfigConstants.PathNormalization.DecodeAndMergeSlashes
                ? HttpConnectionManager.Types.PathWithEscapedSlashesAction.UnescapeAndForward
                : HttpConnectionManager.Types.PathWithEscapedSlashesAction.KeepUnchanged,
        };
        AccessLogBuilder.Apply(hcm, mesh, node, side, snapshot);
        IstioTelemetryBuilder.Apply(hcm, mesh, node, side);
        TracingBuilder.Apply(hcm, index, node, side, snapshot);
        return hcm;
    }

    public static Envoy.Config.Listener.V3.Filter NetworkFilter(HttpConnectionManager hcm) => new()
    {
        Name = HttpConnectionManagerFilter,
        TypedConfig = Any.Pack(hcm),
    };

    public static Duration Seconds(double seconds) => Duration.FromTimeSpan(TimeSpan.FromSeconds(seconds));

    /// <summary>Istio's percent (0-100, fractions allowed) as Envoy's fraction of a million, as Istio converts it.</summary>
    public static Envoy.Type.V3.FractionalPercent Millionths(double percent) => new()
    {
        Numerator = (uint)(percent * 10000),
        Denominator = Envoy.Type.V3.FractionalPercent.Types.DenominatorType.Million,
    };

    /// <summary>A whole percentage as Envoy's fraction of a hundred.</summary>
    public static Envoy.Type.V3.FractionalPercent Hundredths(int percent) => new()
    {
        Numerator = (uint)percent,
        Denominator = Envoy.Type.V3.FractionalPercent.Types.DenominatorType.Hundred,
    };

    /// <summary>An Istio StringMatch as Envoy's <c>StringMatcher</c>.</summary>
    public static Envoy.Type.Matcher.V3.StringMatcher StringMatcher(ConfigConstants.StringMatch match) => match.Kind switch
    {
        ConfigConstants.StringMatch.Exact => new() { Exact = match.Value },
        ConfigConstants.StringMatch.Prefix => new() { Prefix = match.Value },
        _ => new() { SafeRegex = new Envoy.Type.Matcher.V3.RegexMatcher { Regex = match.Value } },
    };

    /// <summary>A route match on the path, from an Istio uri match.</summary>
    public static void SetPath(RouteMatch routeMatch, ConfigConstants.StringMatch? uri)
    {
        switch (uri?.Kind)
        {
            case null:
                routeMatch.Prefix = "/";
                break;
            case ConfigConstants.StringMatch.Exact:
                routeMatch.Path = uri.Value;
                break;
            case ConfigConstants.StringMatch.Prefix:
                routeMatch.Prefix = uri.Value;
                break;
            default:
                routeMatch.SafeRegex = new Envoy.Type.Matcher.V3.RegexMatcher { Regex = uri.Value };
                break;
        }
    }
}
