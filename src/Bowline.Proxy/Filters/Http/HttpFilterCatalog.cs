using Bowline.Proxy.Filters.Http.Cors;
using Bowline.Proxy.Filters.Http.Fault;
using Bowline.Proxy.Filters.Http.LocalRateLimit;
using Bowline.Proxy.Filters.Http.Rbac;
using Bowline.Proxy.Filters.Http.Router;

namespace Bowline.Proxy.Filters.Http;

/// <summary>
/// Every HTTP filter the proxy implements, by the type URL of its config (Envoy's extension registry). An HCM filter
/// whose type is not here is a NACK unless the HCM marks it <c>is_optional</c>. Listed explicitly, not discovered by
/// reflection, so the proxy stays trimmable.
/// </summary>
internal sealed class HttpFilterCatalog
{
    private readonly Dictionary<string, IHttpFilterFactory> _byConfigType;
    private readonly Dictionary<string, IHttpFilterFactory> _byPerRouteType;

    public HttpFilterCatalog(RouterFilterFactory router, Stats.ProxyStats stats, TimeProvider time, Telemetry.IstioMetrics metrics, Telemetry.LocalWorkload local)
    {
        IHttpFilterFactory[] factories =
        [
            new FaultFilterFactory(), new CorsFilterFactory(), new LocalRateLimitFilterFactory(stats, time), new JwtAuthn.JwtAuthnFilterFactory(), new RbacFilterFactory(),
            new PeerMetadata.PeerMetadataFilterFactory(local), new IstioStats.IstioStatsFilterFactory(metrics, local), router,
        ];
        _byConfigType = factories.ToDictionary(f => f.ConfigTypeUrl, StringComparer.Ordinal);
        _byPerRouteType = factories.Where(f => f.PerRouteTypeUrl is not null).ToDictionary(f => f.PerRouteTypeUrl!, StringComparer.Ordinal);
    }

    public const string RouterTypeUrl = RouterFilterFactory.TypeUrl;

    public IHttpFilterFactory? ForConfig(string typeUrl) => _byConfigType.GetValueOrDefault(typeUrl);

    public IHttpFilterFactory? ForPerRoute(string typeUrl) => _byPerRouteType.GetValueOrDefault(typeUrl);

    public IEnumerable<string> ConfigTypes => _byConfigType.Keys.Order(StringComparer.Ordinal);
}
