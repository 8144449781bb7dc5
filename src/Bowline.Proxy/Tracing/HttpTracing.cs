using System.Diagnostics;
using System.Globalization;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Http;
using Bowline.Proxy.Stats;
using Microsoft.AspNetCore.Http;
using Hcm = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;

namespace Bowline.Proxy.Tracing;

/// <summary>A span tag Envoy's <c>custom_tags</c> adds: a literal, an environment variable (read once) or a request header.</summary>
internal sealed record CustomSpanTag(string Tag, string? Literal, string? Header, string? Default);

/// <summary>
/// An HTTP connection manager's <c>tracing</c>, compiled once per update: sampling, the span's kind and tags, and the
/// sink its spans go to. Per request it decides whether to trace, propagates the context upstream, and at the end
/// turns the request record into a span; it reads <see cref="RequestInfo"/>, never recomputes what the router did.
/// </summary>
/// <remarks>
/// <para>Sampling follows Envoy's connection manager: a context that arrives with a decision (W3C's sampled flag,
/// B3's) is continued; otherwise <c>x-client-trace-id</c> with <c>client_sampling</c>, then <c>x-envoy-force-trace</c>,
/// then <c>random_sampling</c> (drawn from the <c>x-request-id</c> UUID, as Envoy's UUID request-id extension does, so
/// every hop of one request draws alike), then <c>overall_sampling</c> caps all of them.</para>
/// <para>Only a trusted downstream decides for us: a verified mesh peer (mTLS) or an address in
/// <c>internal_address_config</c> (the control plane lists loopback on a sidecar's outbound listeners, where the
/// downstream is the workload itself). From anyone else the incoming flag and <c>x-envoy-force-trace</c> are ignored and
/// the proxy samples by its own percentages; the trace id is still continued, so the trace joins the caller's.</para>
/// </remarks>
internal sealed class HttpTracing
{
    private const int TenThousand = 10_000;
    private const string ForceTrace = "x-envoy-force-trace";
    private const string ClientTraceId = "x-client-trace-id";

    private readonly int _clientSampling;
    private readonly int _randomSampling;
    private readonly int _overallSampling;
    private readonly int _maxPathTagLength;
    private readonly bool _spawnUpstreamSpan;
    private readonly ActivityKind _kind;
    private readonly CustomSpanTag[] _customTags;
    private readonly CidrRange[] _internal;
    private readonly string _nodeId;
    private readonly string _zone;
    private readonly Random _random;
    private readonly TracingStats _stats;
    private readonly RequestIdExtension _requestId;

    private readonly SpanSink _sink;

    private HttpTracing(SpanSink sink, int client, int random, int overall, int maxPathTagLength, bool spawnUpstreamSpan, ActivityKind kind,
        CustomSpanTag[] customTags, CidrRange[] internalRanges, string nodeId, string zone, Random rng, TracingStats stats, RequestIdExtension requestId)
    {
        _requestId = requestId;
        _sink = sink;
        _clientSampling = client;
        _randomSampling = random;
        _overallSampling = overall;
        _maxPathTagLength = maxPathTagLength;
        _spawnUpstreamSpan = spawnUpstreamSpan;
        _kind = kind;
        _customTags = customTags;
        _internal = internalRanges;
        _nodeId = nodeId;
        _zone = zone;
        _random = rng;
        _stats = stats;
    }

    /// <summary>The HCM's tracing, or null when it has none (no provider: Envoy traces nothing then).</summary>
    public static HttpTracing? Compile(Hcm hcm, SpanSinks sinks, ProxyStats stats, Random random,
        Envoy.Config.Core.V3.TrafficDirection direction, string where)
    {
        var internalRanges = InternalRanges(hcm, where);
        var requestId = RequestIdExtension.Compile(hcm, where);
        if (hcm.Tracing is not { } tracing)
        {
            return null;
        }
        var twhere = where + " tracing";
        var options = sinks.Options;
        XdsFields.Check(tracing, twhere, "client_sampling", "random_sampling", "overall_sampling", "verbose", "max_path_tag_length", "custom_tags", "provider", "spawn_upstream_span");
        if (tracing.Provider is not { } provider)
        {
            return null;
        }
        var sink = sinks.Get(SinkKey(provider, options, twhere + " provider " + provider.Name));
        var tags = tracing.CustomTags.Select((t, i) => CustomTag(t, $"{twhere} custom_tags[{i}]")).ToArray();
        var zone = options.Locality.Split('/') is { Length: >= 2 } parts ? parts[1] : "";
        // Envoy's span kind follows the listener's direction: inbound is the server's span, everything else the client's.
        var kind = direction == Envoy.Config.Core.V3.TrafficDirection.Inbound || tracing.SpawnUpstreamSpan == true ? ActivityKind.Server : ActivityKind.Client;
        return new HttpTracing(sink, Percent(tracing.ClientSampling, 100, twhere + " client_sampling"), Percent(tracing.RandomSampling, 100, twhere + " random_sampling"),
            Percent(tracing.OverallSampling, 100, twhere + " overall_sampling"), (int)(tracing.MaxPathTagLength ?? 256), tracing.SpawnUpstreamSpan == true, kind, tags,
            internalRanges, options.NodeId, zone, random, new TracingStats(stats, hcm.StatPrefix), requestId);
    }

    /// <summary>Envoy's <c>internal_address_config</c>: which downstream addresses count as internal (here: may decide sampling).</summary>
    private static CidrRange[] InternalRanges(Hcm hcm, string where)
    {
        if (hcm.InternalAddressConfig is not { } config)
        {
            return [];
        }
        XdsFields.Check(config, where + " internal_address_config", "unix_sockets", "cidr_ranges");
        return [.. config.CidrRanges.Select((r, i) => CidrRange.From(r, $"{where} internal_address_config.cidr_ranges[{i}]"))];
    }

    private static int Percent(Envoy.Type.V3.Percent? percent, double fallback, string where)
    {
        var value = percent?.Value ?? fallback;
        if (!(value is >= 0 and <= 100))
        {
            throw new ProxyConfigException($"{where}: {value} is not a percentage (0 to 100)");
        }
        return (int)Math.Round(value * 100);
    }

    private static SpanSinkKey SinkKey(Envoy.Config.Trace.V3.Tracing.Types.Http provider, ProxyOptions options, string where)
    {
        const string OpenTelemetry = "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig";
        if (provider.TypedConfig is not { } typed || TypedStructs.TypeUrlOf(typed) != OpenTelemetry)
        {
            throw new ProxyConfigException($"{where}: tracer {provider.TypedConfig?.TypeUrl ?? "(no typed_config)"} is not supported; Bowline exports with OTLP: {OpenTelemetry}");
        }
        var otel = typed.Unpack<Envoy.Config.Trace.V3.OpenTelemetryConfig>();
        XdsFields.Check(otel, where, "grpc_service", "http_service", "service_name");
        var service = otel.ServiceName is { Length: > 0 } name ? name : options.NodeCluster is { Length: > 0 } cluster ? cluster : "unknown_service:bowline";
        if (otel.GrpcService is { } grpc)
        {
            XdsFields.Check(grpc, where + " grpc_service", "envoy_grpc", "timeout", "initial_metadata");
            if (grpc.EnvoyGrpc is not { ClusterName.Length: > 0 } envoyGrpc)
            {
                throw new ProxyConfigException($"{where} grpc_service: only envoy_grpc with a cluster_name is supported (google_grpc is not)");
            }
            XdsFields.Check(envoyGrpc, where + " grpc_service.envoy_grpc", "cluster_name", "authority");
            var headers = string.Join(",", grpc.InitialMetadata.Select(h => $"{h.Key}={h.Value}"));
            return new SpanSinkKey(envoyGrpc.ClusterName, envoyGrpc.Authority is { Length: > 0 } a ? a : envoyGrpc.ClusterName, service, Http: false, "",
                grpc.Timeout?.ToTimeSpan() is { Ticks: > 0 } t ? t : TimeSpan.FromSeconds(10), headers);
        }
        if (otel.HttpService is { } http)
        {
            XdsFields.Check(http, where + " http_service", "http_uri", "request_headers_to_add");
            var uri = http.HttpUri ?? throw new ProxyConfigException($"{where} http_service: http_uri is required");
            XdsFields.Check(uri, where + " http_service.http_uri", "uri", "cluster", "timeout");
            // Istio writes the collector's host and path without a scheme (url.JoinPath(host, path)); Envoy reads it as http.
            var text = uri.Uri.Contains("://", StringComparison.Ordinal) ? uri.Uri : "http://" + uri.Uri;
            if (!uri.HasCluster || !Uri.TryCreate(text, UriKind.Absolute, out var parsed) || parsed.Scheme is not ("http" or "https"))
            {
                throw new ProxyConfigException($"{where} http_service.http_uri: needs an http(s) uri (or host/path) and a cluster (got '{uri.Uri}')");
            }
            var headers = string.Join(",", http.RequestHeadersToAdd.Select(h => $"{h.Header?.Key}={h.Header?.Value}"));
            return new SpanSinkKey(uri.Cluster, parsed.Authority, service, Http: true, parsed.PathAndQuery,
                uri.Timeout?.ToTimeSpan() is { Ticks: > 0 } t ? t : TimeSpan.FromSeconds(10), headers);
        }
        throw new ProxyConfigException($"{where}: OpenTelemetryConfig needs grpc_service or http_service");
    }

    private static CustomSpanTag CustomTag(Envoy.Type.Tracing.V3.CustomTag tag, string where)
    {
        XdsFields.Check(tag, where, "tag", "literal", "environment", "request_header");
        if (tag.Tag is not { Length: > 0 })
        {
            throw new ProxyConfigException($"{where}: tag needs a name");
        }
        return tag.TypeCase switch
        {
            Envoy.Type.Tracing.V3.CustomTag.TypeOneofCase.Literal => new CustomSpanTag(tag.Tag, tag.Literal.Value, null, null),
            // Read once: the proxy's environment does not change under it.
            Envoy.Type.Tracing.V3.CustomTag.TypeOneofCase.Environment => new CustomSpanTag(tag.Tag,
                Environment.GetEnvironmentVariable(tag.Environment.Name) is { Length: > 0 } value ? value : tag.Environment.DefaultValue is { Length: > 0 } d ? d : null, null, null),
            Envoy.Type.Tracing.V3.CustomTag.TypeOneofCase.RequestHeader => new CustomSpanTag(tag.Tag, null, tag.RequestHeader.Name.ToLowerInvariant(),
                tag.RequestHeader.DefaultValue is { Length: > 0 } d ? d : null),
            _ => throw new ProxyConfigException($"{where}: a custom tag needs literal, environment or request_header (metadata tags are not supported)"),
        };
    }

    /// <summary>
    /// Before any filter runs: decides, starts this hop's span when sampled, and rewrites the trace headers the
    /// upstream (and the access log) will see.
    /// </summary>
    public void Begin(HttpStream stream)
    {
        var headers = stream.Context.Request.Headers;
        var incoming = TraceContext.Extract(headers, out var samplingOnly);
        var trusted = IsTrusted(stream);
        bool sampled;
        if (trusted && (incoming?.Sampled ?? samplingOnly) is { } decided)
        {
            sampled = decided;
            if (_requestId.PackTraceReason)
            {
                RequestIdExtension.Pack(headers, decided ? RequestIdExtension.Packed(headers) ?? TraceReason.Sampled : TraceReason.NotTraced);
            }
        }
        else
        {
            // A decision an earlier hop packed into x-request-id counts only from a trusted downstream, as a context does.
            var draw = Draw(headers);
            var reason = (trusted && _requestId.PackTraceReason ? RequestIdExtension.Packed(headers) : null) ?? Decide(headers, trusted, draw);
            if (reason != TraceReason.NotTraced && draw >= _overallSampling)
            {
                reason = TraceReason.NotTraced;
            }
            sampled = reason != TraceReason.NotTraced;
            if (_requestId.PackTraceReason)
            {
                RequestIdExtension.Pack(headers, reason);
            }
        }
        var traceId = incoming?.TraceId ?? ActivityTraceId.CreateRandom();
        var spanId = default(ActivitySpanId);
        if (sampled)
        {
            var parent = incoming is { } from ? new ActivityContext(from.TraceId, from.SpanId, ActivityTraceFlags.Recorded, from.TraceState, isRemote: true) : default;
            // The operation name is never exported (End sets the span's display name), but it must not be empty: an
            // empty name makes Activity throw and swallow an ArgumentException per span, 6% of a sidecar's CPU with
            // every request traced (perf, bench/ all-on).
            if (_sink.Start("request", _kind, parent, stream.Info.StartTime) is { } span)
            {
                stream.Span = span;
                traceId = span.TraceId;
                spanId = span.SpanId;
                if (_spawnUpstreamSpan && _sink.Start("router", ActivityKind.Client, span.Context, stream.Info.StartTime) is { } upstream)
                {
                    stream.UpstreamSpan = upstream;
                    spanId = upstream.SpanId;
                }
            }
            else
            {
                sampled = false;
            }
        }
        if (!sampled)
        {
            spanId = ActivitySpanId.CreateRandom();
        }
        TraceContext.Inject(headers, traceId, spanId, sampled, incoming);
    }

    private bool IsTrusted(HttpStream stream)
    {
        if (stream.Connection?.Peer?.Spiffe is not null)
        {
            return true;
        }
        if (_internal.Length == 0 || stream.Context.Connection.RemoteIpAddress is not { } remote)
        {
            return false;
        }
        foreach (var range in _internal)
        {
            if (range.Contains(remote))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Envoy's order of reasons to trace a request that arrived with no decision; the overall cap applies after.</summary>
    private TraceReason Decide(IHeaderDictionary headers, bool trusted, int draw)
    {
        if (headers.ContainsKey(ClientTraceId) && _random.Next(TenThousand) < _clientSampling)
        {
            _stats.ClientEnabled.Increment();
            return TraceReason.Client;
        }
        if (trusted && headers.ContainsKey(ForceTrace))
        {
            _stats.ServiceForced.Increment();
            return TraceReason.Forced;
        }
        if (draw < _randomSampling)
        {
            _stats.RandomSampling.Increment();
            return TraceReason.Sampled;
        }
        _stats.NotTraceable.Increment();
        return TraceReason.NotTraced;
    }

    /// <summary>
    /// The request's draw out of 10,000: Envoy's UUID as a number (its first 8 hex digits, mod 10,000), so every hop of
    /// one request draws alike; a fresh random draw when the extension says not to or the id is no UUID.
    /// </summary>
    private int Draw(IHeaderDictionary headers)
    {
        if (_requestId.UseRequestIdForTraceSampling && headers.TryGetValue("x-request-id", out var id) && id.Count == 1 && id[0] is { Length: 36 } uuid
            && uint.TryParse(uuid.AsSpan(0, 8), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value))
        {
            return (int)(value % TenThousand);
        }
        return _random.Next(TenThousand);
    }

    /// <summary>After the request: names and tags the span from the request record and hands it to the sink.</summary>
    public void End(HttpStream stream)
    {
        if (stream.Span is not { } span)
        {
            return;
        }
        var info = stream.Info;
        var request = stream.Context.Request;
        var end = info.StartTime + stream.Time.GetElapsedTime(info.StartTimestamp, info.EndTimestamp);
        var path = request.Path.Value ?? "/";
        span.DisplayName = stream.Route?.Decorator ?? Truncate(string.Concat(request.Host.Value, path));
        span.SetTag("component", "proxy");
        span.SetTag("node_id", _nodeId);
        span.SetTag("zone", _zone);
        span.SetTag("guid:x-request-id", request.Headers["x-request-id"].ToString());
        span.SetTag("http.url", Truncate(string.Concat(request.Scheme, "://", request.Host.Value, path, request.QueryString.Value)));
        span.SetTag("http.method", request.Method);
        span.SetTag("downstream_cluster", HeaderOrDash(request.Headers, "x-envoy-downstream-service-cluster"));
        span.SetTag("user_agent", HeaderOrDash(request.Headers, "user-agent"));
        span.SetTag("http.protocol", request.Protocol);
        span.SetTag("peer.address", stream.Context.Connection.RemoteIpAddress?.ToString());
        span.SetTag("request_size", info.BytesReceived.ToString(CultureInfo.InvariantCulture));
        span.SetTag("response_size", info.BytesSent.ToString(CultureInfo.InvariantCulture));
        span.SetTag("response_flags", info.Flags == ResponseFlags.None ? "-" : ResponseFlagCodes.Format(info.Flags));
        span.SetTag("http.status_code", info.ResponseCode.ToString(CultureInfo.InvariantCulture));
        if (info.UpstreamCluster is { } cluster)
        {
            span.SetTag("upstream_cluster", cluster);
            span.SetTag("upstream_cluster.name", cluster);
        }
        if (info.UpstreamHost is { } host)
        {
            span.SetTag("upstream_address", host.Address + ":" + host.Port.ToString(CultureInfo.InvariantCulture));
        }
        foreach (var tag in _customTags)
        {
            if (tag.Header is { } header && request.Headers.TryGetValue(header, out var value))
            {
                span.SetTag(tag.Tag, value.ToString());
            }
            else if ((tag.Literal ?? tag.Default) is { } literal)
            {
                span.SetTag(tag.Tag, literal);
            }
        }
        // Envoy marks a span an error when there was no response or a 5xx one.
        if (info.ResponseCode is 0 or >= 500)
        {
            span.SetTag("error", "true");
            span.SetStatus(ActivityStatusCode.Error);
        }
        if (stream.UpstreamSpan is { } upstream)
        {
            upstream.DisplayName = "router " + (info.UpstreamCluster ?? "-") + " egress";
            upstream.SetTag("upstream_cluster", info.UpstreamCluster);
            upstream.SetTag("http.status_code", info.ResponseCode.ToString(CultureInfo.InvariantCulture));
            _sink.End(upstream, end);
        }
        _sink.End(span, end);
    }

    private string Truncate(string value) => value.Length <= _maxPathTagLength ? value : value[.._maxPathTagLength];

    private static string HeaderOrDash(IHeaderDictionary headers, string name) =>
        headers.TryGetValue(name, out var value) && value.Count > 0 ? value.ToString() : "-";

    /// <summary>Envoy's connection manager tracing stats: <c>http.&lt;prefix&gt;.tracing.*</c>, why each request was or was not traced.</summary>
    private sealed class TracingStats(ProxyStats stats, string prefix)
    {
        public Stat RandomSampling { get; } = stats.Get(StatTag.Http(prefix), "tracing.random_sampling");

        public Stat ServiceForced { get; } = stats.Get(StatTag.Http(prefix), "tracing.service_forced");

        public Stat ClientEnabled { get; } = stats.Get(StatTag.Http(prefix), "tracing.client_enabled");

        public Stat NotTraceable { get; } = stats.Get(StatTag.Http(prefix), "tracing.not_traceable");
    }
}
