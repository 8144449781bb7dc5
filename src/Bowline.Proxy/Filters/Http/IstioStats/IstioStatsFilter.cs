using Bowline.Proxy.Http;
using Bowline.Proxy.Telemetry;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.Proxy.Filters.Http.IstioStats;

/// <summary>The <c>istio.stats</c> HTTP filter's factory: one <see cref="IstioStatsConfig"/> per HCM.</summary>
internal sealed class IstioStatsFilterFactory(IstioMetrics metrics, LocalWorkload local) : IHttpFilterFactory
{
    public string ConfigTypeUrl => IstioStatsConfig.TypeUrl;

    public string? PerRouteTypeUrl => null;

    public IHttpFilter Create(string name, Any config, FilterFactoryContext context, string where) =>
        new IstioStatsFilter(name, IstioStatsConfig.Compile(config, metrics, local, context.Direction, where));
}

/// <summary>
/// Istio's standard request metrics. Nothing happens on the request path; when the request ends (whatever filter
/// answered it) the HCM hands its record over, as Envoy runs an access-log-style filter's log callback.
/// </summary>
internal sealed class IstioStatsFilter(string name, IstioStatsConfig config) : IHttpFilter, IHttpStreamObserver
{
    public string Name { get; } = name;

    public ValueTask<FilterStatus> OnRequestAsync(HttpStream stream) => ValueTask.FromResult(FilterStatus.Continue);

    public void OnStreamComplete(HttpStream stream) => config.Record(stream);
}
