using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Bowline.Proxy.Http;

namespace Bowline.Proxy.Telemetry;

/// <summary>Istio's <c>reporter</c> label: which side of the request this sidecar is.</summary>
internal enum Reporter
{
    /// <summary>The client's sidecar (an outbound listener), and gateways, as Istio reports them.</summary>
    Source,

    /// <summary>The server's sidecar (an inbound listener).</summary>
    Destination,
}

/// <summary>Istio's <c>connection_security_policy</c>.</summary>
internal enum SecurityPolicy
{
    Unknown,
    None,
    MutualTls,
}

/// <summary>
/// The service a request was for, Istio's <c>destination_service</c>, <c>_name</c> and <c>_namespace</c>: from the
/// cluster's <c>istio</c> metadata (<c>services[0]</c>), else from the request's host. Interned by host, so series key
/// on it by reference; bounded like every label source.
/// </summary>
internal sealed class ServiceLabels
{
    private const int MaxInterned = 4096;
    private static readonly ConcurrentDictionary<string, ServiceLabels> s_byHost = new(StringComparer.Ordinal);

    private ServiceLabels(string host, string name, string ns)
    {
        var text = new StringBuilder();
        WorkloadMetadata.Label(text, "destination", "service", host);
        WorkloadMetadata.Label(text, "destination", "service_name", name);
        WorkloadMetadata.Label(text, "destination", "service_namespace", ns);
        Rendered = text.ToString();
        Host = host;
    }

    public static ServiceLabels Unknown { get; } = new("unknown", "unknown", "unknown");

    public string Host { get; }

    /// <summary><c>destination_service="...",destination_service_name="...",destination_service_namespace="...",</c></summary>
    public string Rendered { get; }

    /// <summary>A service the control plane named (cluster metadata): compile time only.</summary>
    public static ServiceLabels Of(string host, string name, string ns) => new(host, name.Length > 0 ? name : "unknown", ns.Length > 0 ? ns : "unknown");

    /// <summary>Istio's host-header fallback: the authority without its port, the first label as the name.</summary>
    public static ServiceLabels FromHost(string authority)
    {
        if (authority.Length == 0)
        {
            return Unknown;
        }
        if (s_byHost.TryGetValue(authority, out var known))
        {
            return known;
        }
        if (s_byHost.Count >= MaxInterned)
        {
            return Unknown;
        }
        var host = authority;
        var colon = host.LastIndexOf(':');
        if (colon > 0 && host.IndexOf(']') < colon)
        {
            host = host[..colon];
        }
        var parts = host.Split('.');
        // name.namespace.svc.<domain> is a mesh service; anything else is only a host.
        var labels = parts.Length >= 3 && parts[2] == "svc" ? new ServiceLabels(host, parts[0], parts[1]) : new ServiceLabels(host, host, "unknown");
        return s_byHost.GetOrAdd(authority, labels);
    }
}

/// <summary>
/// Istio's standard metrics of one proxy, kept as Istio's stats filter keeps them: one series per distinct label set,
/// each a set of counters and histograms updated with atomics. A request's labels are references to interned objects
/// (the peers, the service) and a few integers, so recording looks up a struct key and allocates nothing once its
/// series exists. The number of series is capped (<see cref="MaxSeries"/>); past it a request is counted in
/// <c>bowline.istio_stats.series_overflow</c> and not recorded, so hostile label values cannot exhaust memory.
/// </summary>
internal sealed class IstioMetrics(Stats.ProxyStats stats)
{
    public const int MaxSeries = 20_000;

    /// <summary>Envoy's default histogram buckets, which Istio's request duration and size histograms use.</summary>
    internal static readonly double[] Buckets = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

    private readonly ConcurrentDictionary<RequestKey, RequestSeries> _requests = new();
    private readonly ConcurrentDictionary<TcpKey, TcpSeries> _tcp = new();
    private readonly Stats.Stat _overflow = stats.Get("bowline.istio_stats.series_overflow");

    public void RecordRequest(in RequestKey key, double durationMs, long requestBytes, long responseBytes, long requestMessages, long responseMessages)
    {
        if (!_requests.TryGetValue(key, out var series))
        {
            if (_requests.Count >= MaxSeries)
            {
                _overflow.Increment();
                return;
            }
            series = _requests.GetOrAdd(key, static _ => new RequestSeries());
        }
        Interlocked.Increment(ref series.Requests);
        series.Duration.Observe(durationMs);
        series.RequestBytes.Observe(requestBytes);
        series.ResponseBytes.Observe(responseBytes);
        if (key.Grpc)
        {
            Interlocked.Add(ref series.RequestMessages, requestMessages);
            Interlocked.Add(ref series.ResponseMessages, responseMessages);
        }
    }

    /// <summary>The series of one TCP connection: resolved when it opens, updated as it runs and when it closes.</summary>
    public TcpSeries? Tcp(in TcpKey key)
    {
        if (_tcp.TryGetValue(key, out var series))
        {
            return series;
        }
        if (_tcp.Count >= MaxSeries)
        {
            _overflow.Increment();
            return null;
        }
        return _tcp.GetOrAdd(key, static _ => new TcpSeries());
    }

    public int SeriesCount => _requests.Count + _tcp.Count;

    /// <summary>The Prometheus text of every series, Istio's names and label order.</summary>
    public void Render(StringBuilder text)
    {
        var requests = _requests.Select(kv => (Labels: kv.Key.Render(), kv.Value)).OrderBy(s => s.Labels, StringComparer.Ordinal).ToList();
        Family(text, "istio_requests_total", "counter", requests, (t, l, s) => Sample(t, "istio_requests_total", l, Volatile.Read(ref s.Requests)));
        Family(text, "istio_request_duration_milliseconds", "histogram", requests, (t, l, s) => s.Duration.Render(t, "istio_request_duration_milliseconds", l));
        Family(text, "istio_request_bytes", "histogram", requests, (t, l, s) => s.RequestBytes.Render(t, "istio_request_bytes", l));
        Family(text, "istio_response_bytes", "histogram", requests, (t, l, s) => s.ResponseBytes.Render(t, "istio_response_bytes", l));
        var grpc = requests.Where(r => r.Labels.Contains("request_protocol=\"grpc\"", StringComparison.Ordinal)).ToList();
        Family(text, "istio_request_messages_total", "counter", grpc, (t, l, s) => Sample(t, "istio_request_messages_total", l, Volatile.Read(ref s.RequestMessages)));
        Family(text, "istio_response_messages_total", "counter", grpc, (t, l, s) => Sample(t, "istio_response_messages_total", l, Volatile.Read(ref s.ResponseMessages)));
        var tcp = _tcp.Select(kv => (Labels: kv.Key.Render(), kv.Value)).OrderBy(s => s.Labels, StringComparer.Ordinal).ToList();
        Family(text, "istio_tcp_sent_bytes_total", "counter", tcp, (t, l, s) => Sample(t, "istio_tcp_sent_bytes_total", l, Volatile.Read(ref s.SentBytes)));
        Family(text, "istio_tcp_received_bytes_total", "counter", tcp, (t, l, s) => Sample(t, "istio_tcp_received_bytes_total", l, Volatile.Read(ref s.ReceivedBytes)));
        Family(text, "istio_tcp_connections_opened_total", "counter", tcp, (t, l, s) => Sample(t, "istio_tcp_connections_opened_total", l, Volatile.Read(ref s.Opened)));
        Family(text, "istio_tcp_connections_closed_total", "counter", tcp, (t, l, s) => Sample(t, "istio_tcp_connections_closed_total", l, Volatile.Read(ref s.Closed)));
    }

    private static void Family<T>(StringBuilder text, string name, string type, List<(string Labels, T Series)> series, Action<StringBuilder, string, T> write)
    {
        if (series.Count == 0)
        {
            return;
        }
        text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        foreach (var (labels, s) in series)
        {
            write(text, labels, s);
        }
    }

    private static void Sample(StringBuilder text, string name, string labels, long value) =>
        text.Append(name).Append('{').Append(labels).Append("} ").Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
}

/// <summary>
/// The labels of one request series. The peers and the service are interned objects (compared by reference); the
/// principals are per-connection strings; the rest are small values. No field allocates per request.
/// </summary>
internal readonly record struct RequestKey(
    Reporter Reporter,
    WorkloadMetadata Source,
    string SourcePrincipal,
    WorkloadMetadata Destination,
    string DestinationPrincipal,
    ServiceLabels Service,
    bool Grpc,
    int ResponseCode,
    int GrpcStatus,
    ResponseFlags Flags,
    SecurityPolicy Security)
{
    public string Render()
    {
        var text = new StringBuilder(1024);
        CommonLabels(text, Reporter, Source, SourcePrincipal, Destination, DestinationPrincipal, Service);
        text.Append(Grpc ? "request_protocol=\"grpc\"," : "request_protocol=\"http\",");
        text.Append("response_code=\"").Append(ResponseCode.ToString(CultureInfo.InvariantCulture)).Append("\",");
        text.Append("grpc_response_status=\"").Append(GrpcStatus >= 0 ? GrpcStatus.ToString(CultureInfo.InvariantCulture) : "").Append("\",");
        text.Append("response_flags=\"").Append(ResponseFlagCodes.Format(Flags)).Append("\",");
        text.Append("connection_security_policy=\"").Append(PolicyName(Security)).Append('"');
        return text.ToString();
    }

    internal static void CommonLabels(StringBuilder text, Reporter reporter, WorkloadMetadata source, string sourcePrincipal, WorkloadMetadata destination, string destinationPrincipal, ServiceLabels service)
    {
        text.Append(reporter == Reporter.Source ? "reporter=\"source\"," : "reporter=\"destination\",");
        text.Append(source.SourceLabels.BeforePrincipal);
        WorkloadMetadata.Label(text, "source", "principal", sourcePrincipal);
        text.Append(source.SourceLabels.AfterPrincipal);
        text.Append(destination.DestinationLabels.BeforePrincipal);
        WorkloadMetadata.Label(text, "destination", "principal", destinationPrincipal);
        text.Append(destination.DestinationLabels.AfterPrincipal);
        text.Append(service.Rendered);
    }

    internal static string PolicyName(SecurityPolicy policy) => policy switch
    {
        SecurityPolicy.MutualTls => "mutual_tls",
        SecurityPolicy.None => "none",
        _ => "unknown",
    };
}

/// <summary>The labels of one TCP series: as a request's, without the response code and gRPC status.</summary>
internal readonly record struct TcpKey(
    Reporter Reporter,
    WorkloadMetadata Source,
    string SourcePrincipal,
    WorkloadMetadata Destination,
    string DestinationPrincipal,
    ServiceLabels Service,
    ResponseFlags Flags,
    SecurityPolicy Security)
{
    public string Render()
    {
        var text = new StringBuilder(1024);
        RequestKey.CommonLabels(text, Reporter, Source, SourcePrincipal, Destination, DestinationPrincipal, Service);
        text.Append("request_protocol=\"tcp\",");
        text.Append("response_flags=\"").Append(ResponseFlagCodes.Format(Flags)).Append("\",");
        text.Append("connection_security_policy=\"").Append(RequestKey.PolicyName(Security)).Append('"');
        return text.ToString();
    }
}

internal sealed class RequestSeries
{
    public long Requests;
    public long RequestMessages;
    public long ResponseMessages;

    public Histogram Duration { get; } = new();

    public Histogram RequestBytes { get; } = new();

    public Histogram ResponseBytes { get; } = new();
}

internal sealed class TcpSeries
{
    public long Opened;
    public long Closed;
    public long SentBytes;
    public long ReceivedBytes;
}

/// <summary>A Prometheus histogram over <see cref="IstioMetrics.Buckets"/>: per-bucket counts, a count and a sum, lock-free.</summary>
internal sealed class Histogram
{
    private readonly long[] _buckets = new long[IstioMetrics.Buckets.Length + 1];
    private long _count;

    // The sum in thousandths, so it stays an integer updated with one atomic add.
    private long _sumMilli;

    public void Observe(double value)
    {
        var buckets = IstioMetrics.Buckets;
        var i = 0;
        while (i < buckets.Length && value > buckets[i])
        {
            i++;
        }
        Interlocked.Increment(ref _buckets[i]);
        Interlocked.Increment(ref _count);
        Interlocked.Add(ref _sumMilli, (long)(value * 1000));
    }

    public long Count => Volatile.Read(ref _count);

    public void Render(StringBuilder text, string name, string labels)
    {
        long cumulative = 0;
        for (var i = 0; i < IstioMetrics.Buckets.Length; i++)
        {
            cumulative += Volatile.Read(ref _buckets[i]);
            text.Append(name).Append("_bucket{").Append(labels).Append(",le=\"").Append(IstioMetrics.Buckets[i].ToString(CultureInfo.InvariantCulture)).Append("\"} ")
                .Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
        cumulative += Volatile.Read(ref _buckets[^1]);
        text.Append(name).Append("_bucket{").Append(labels).Append(",le=\"+Inf\"} ").Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
        text.Append(name).Append("_sum{").Append(labels).Append("} ").Append((Volatile.Read(ref _sumMilli) / 1000.0).ToString(CultureInfo.InvariantCulture)).Append('\n');
        text.Append(name).Append("_count{").Append(labels).Append("} ").Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
    }
}
