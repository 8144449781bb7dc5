using System.Text;
using Bowline.Proxy.Stats;
using Microsoft.Extensions.Logging;

namespace Bowline.Proxy.Admin;

/// <summary>
/// What Prometheus scrapes from a sidecar, Istio's merged metrics: Istio's standard metrics, the Envoy-named stats,
/// and, when the workload declares one (<c>prometheus.io/port</c> and <c>path</c>), the application's own metrics
/// fetched from it on loopback, appended as they are. The app failing or being slow costs the scrape its app part
/// only (bounded by <see cref="AppScrapeTimeout"/>), and is logged and counted.
/// </summary>
internal sealed partial class PrometheusEndpoint(ProxyStats stats, Telemetry.IstioMetrics istio, ProxyOptions options, ILogger<PrometheusEndpoint> logger)
{
    public static readonly TimeSpan AppScrapeTimeout = TimeSpan.FromSeconds(5);

    // The app is scraped on loopback, never through a proxy an HTTP_PROXY variable names.
    private readonly HttpClient _app = new(new SocketsHttpHandler { UseProxy = false, ActivityHeadersPropagator = null, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1) })
    {
        Timeout = AppScrapeTimeout,
    };

    private static readonly string s_build = Bowline.Xds.BuildInfo.IstioBuildMetric("proxy");

    private readonly Stat _appFailures = stats.Get("bowline.app_metrics.scrape_failures");

    /// <summary>The proxy's own metrics: Istio's, then Envoy's.</summary>
    public string RenderProxy()
    {
        var text = new StringBuilder(16 * 1024);
        istio.Render(text);
        stats.RenderPrometheus(text);
        return text.ToString();
    }

    /// <summary>
    /// The proxy's metrics merged with the app's, for the status port; with the build gauge, which Istio's agent
    /// (not Envoy) adds there as <c>component="proxy"</c>.
    /// </summary>
    public async Task<string> RenderMergedAsync(CancellationToken cancellationToken)
    {
        var proxy = s_build + RenderProxy();
        if (options.AppMetrics is not { } app)
        {
            return proxy;
        }
        try
        {
            using var response = await _app.GetAsync(app, cancellationToken).ConfigureAwait(false);
            response.EnsureSuccessStatusCode();
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            return body.Length == 0 || body.EndsWith('\n') ? proxy + body : proxy + body + "\n";
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            _appFailures.Increment();
            LogAppScrapeFailed(logger, app, e.Message);
            return proxy;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Scraping the app's metrics at {Url} failed: {Reason}; the proxy's metrics are served without them. Check the workload's prometheus.io/port and prometheus.io/path")]
    private static partial void LogAppScrapeFailed(ILogger logger, Uri url, string reason);
}
