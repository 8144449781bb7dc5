using System.Diagnostics;
using Bowline.Proxy.Stats;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Bowline.Proxy.Tracing;

/// <summary>Where one tracer's spans go: an OTLP collector behind an Envoy cluster, over gRPC or HTTP, as one service.</summary>
/// <param name="Path">The URI path for OTLP/HTTP (<c>/v1/traces</c>); empty for gRPC, whose path is the service method.</param>
/// <param name="Headers">Extra request headers (gRPC initial metadata, HTTP request_headers_to_add) as <c>k=v,k2=v2</c>.</param>
internal sealed record SpanSinkKey(string Cluster, string Authority, string ServiceName, bool Http, string Path, TimeSpan Timeout, string Headers);

/// <summary>
/// Every tracer the proxy's HTTP connection managers name, by destination. Runtime state: a sink outlives the config
/// updates that keep naming it, so a listener update neither drops queued spans nor restarts the exporter. Sinks are
/// few (one per distinct provider config, usually one per proxy) and are kept until the proxy stops.
/// </summary>
internal sealed class SpanSinks(Clusters.ClusterManager clusters, ProxyStats stats, ILoggerFactory loggers, ProxyOptions options) : IDisposable
{
    private readonly Dictionary<SpanSinkKey, SpanSink> _sinks = [];
    private readonly Lock _lock = new();

    /// <summary>The proxy's node: its id, cluster and locality name spans and their resource.</summary>
    public ProxyOptions Options => options;

    public SpanSink Get(SpanSinkKey key)
    {
        lock (_lock)
        {
            if (!_sinks.TryGetValue(key, out var sink))
            {
                sink = _sinks[key] = new SpanSink(key, clusters, stats, loggers.CreateLogger<SpanSink>(), options.TraceFlushInterval, options.NodeId);
            }
            return sink;
        }
    }

    /// <summary>Flushes what is queued (bounded by each exporter's timeout) and stops the exporters.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var sink in _sinks.Values)
            {
                sink.Dispose();
            }
            _sinks.Clear();
        }
    }
}

/// <summary>
/// One OTLP destination: an <see cref="ActivitySource"/> of its own with a tracer provider that listens to nothing
/// else (so proxies sharing a process never see each other's spans), the SDK's batch processor (a bounded queue of
/// 2,048 spans, a background export every <c>flushInterval</c> or every 512 spans) and the OTLP exporter, whose HTTP client sends through the collector's Envoy cluster. The proxy makes every sampling decision
/// itself: only sampled requests start an activity here, and the provider's sampler records all it is given.
/// </summary>
internal sealed partial class SpanSink : IDisposable
{
    private static int s_instances;
    private readonly ActivitySource _source;
    private readonly TracerProvider _provider;

    public SpanSink(SpanSinkKey key, Clusters.ClusterManager clusters, ProxyStats stats, ILogger logger, TimeSpan flushInterval, string nodeId)
    {
        SpansSent = stats.Get("tracing.opentelemetry.spans_sent");
        var reportsSent = stats.Get("tracing.opentelemetry.http_reports_sent");
        var reportsFailed = stats.Get("tracing.opentelemetry.http_reports_failed");
        _source = new ActivitySource($"bowline.proxy.{Interlocked.Increment(ref s_instances)}");
        var endpoint = new Uri($"http://{key.Authority}{key.Path}", UriKind.Absolute);
        _provider = Sdk.CreateTracerProviderBuilder()
            .AddSource(_source.Name)
            .SetSampler(new AlwaysOnSampler())
            .SetResourceBuilder(ResourceBuilder.CreateEmpty().AddService(key.ServiceName, autoGenerateServiceInstanceId: false, serviceInstanceId: nodeId))
            .AddOtlpExporter(o =>
            {
                o.Endpoint = endpoint;
                o.Protocol = key.Http ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc;
                o.TimeoutMilliseconds = (int)Math.Clamp(key.Timeout.TotalMilliseconds, 1, int.MaxValue);
                o.Headers = key.Headers.Length > 0 ? key.Headers : null;
                o.ExportProcessorType = ExportProcessorType.Batch;
                o.BatchExportProcessorOptions = new BatchExportProcessorOptions<Activity>
                {
                    MaxQueueSize = 2048,
                    // Not Envoy's min_flush_spans (5): an export per 5 spans was 200 POSTs a second at 1,000 rps
                    // and most of tracing's cost in bench/ (the all-on scenario); 512 is the SDK's default batch.
                    MaxExportBatchSize = 512,
                    ScheduledDelayMilliseconds = (int)Math.Clamp(flushInterval.TotalMilliseconds, 1, int.MaxValue),
                    ExporterTimeoutMilliseconds = (int)Math.Clamp(key.Timeout.TotalMilliseconds, 1, int.MaxValue),
                };
                o.HttpClientFactory = () => new HttpClient(new ReportCounter(new Clusters.ClusterHttpHandler(clusters, key.Cluster), key.Cluster, reportsSent, reportsFailed, logger))
                {
                    Timeout = key.Timeout,
                };
            })
            .Build();
    }

    /// <summary>Spans handed to the exporter (Envoy's <c>tracing.opentelemetry.spans_sent</c>).</summary>
    public Stat SpansSent { get; }

    /// <summary>
    /// Starts a recorded span; null when the provider is gone (the proxy is stopping). <see cref="Activity.Current"/>
    /// is left as it was: the span must not leak into anything else the request's flow does.
    /// </summary>
    public Activity? Start(string name, ActivityKind kind, ActivityContext parent, DateTimeOffset start)
    {
        var previous = Activity.Current;
        Activity.Current = null;
        try
        {
            return _source.StartActivity(name, kind, parent, tags: null, links: null, startTime: start);
        }
        finally
        {
            Activity.Current = previous;
        }
    }

    /// <summary>Ends <paramref name="span"/> at <paramref name="end"/> and queues it for export.</summary>
    public void End(Activity span, DateTimeOffset end)
    {
        var previous = Activity.Current;
        span.SetEndTime(end.UtcDateTime);
        span.Stop();
        Activity.Current = previous;
        SpansSent.Increment();
    }

    public void Dispose()
    {
        _provider.Dispose();
        _source.Dispose();
    }

    /// <summary>Counts each export the collector answered or refused; a failure is logged with the cluster it went to.</summary>
    private sealed partial class ReportCounter(HttpMessageHandler inner, string cluster, Stat sent, Stat failed, ILogger logger) : DelegatingHandler(inner)
    {
        // OTLP/HTTP sends synchronously on the exporter's thread, gRPC asynchronously: both are counted.
        protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken) =>
            SendAsync(request, cancellationToken).GetAwaiter().GetResult();

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            try
            {
                var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    sent.Increment();
                }
                else
                {
                    failed.Increment();
                    LogExportFailed(logger, cluster, $"HTTP {(int)response.StatusCode}");
                }
                return response;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
            {
                failed.Increment();
                LogExportFailed(logger, cluster, e.Message);
                throw;
            }
        }

        [LoggerMessage(Level = LogLevel.Warning, Message = "span export to cluster {Cluster} failed: {Reason}; that batch of spans is dropped")]
        private static partial void LogExportFailed(ILogger logger, string cluster, string reason);
    }
}
