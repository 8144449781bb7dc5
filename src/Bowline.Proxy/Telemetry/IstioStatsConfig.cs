using Bowline.Proxy.Configuration;
using Bowline.Proxy.Http;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Bowline.Proxy.Telemetry;

/// <summary>
/// Istio's <c>istio.stats</c> filter (<c>stats.PluginConfig</c>, sent as a TypedStruct), compiled once per listener:
/// which reporter this side is (from the listener's traffic direction, as Istio's filter infers it) and whether the
/// request's host stands in for a destination service the cluster does not name. Used by the HTTP filter and by the
/// network filter before a tcp_proxy; both only read the request's record when it ends.
/// </summary>
internal sealed class IstioStatsConfig
{
    public const string TypeUrl = "type.googleapis.com/stats.PluginConfig";

    private readonly IstioMetrics _metrics;
    private readonly LocalWorkload _local;
    private readonly bool _hostFallback;

    private IstioStatsConfig(IstioMetrics metrics, LocalWorkload local, Reporter reporter, bool hostFallback)
    {
        _metrics = metrics;
        _local = local;
        Reporter = reporter;
        _hostFallback = hostFallback;
    }

    public Reporter Reporter { get; }

    public static IstioStatsConfig Compile(Any config, IstioMetrics metrics, LocalWorkload local, Envoy.Config.Core.V3.TrafficDirection direction, string where)
    {
        var value = TypedStructs.ValueOf(config, where);
        // metrics/definitions customise Istio's metrics (extra dimensions, new metrics): not implemented, so refused.
        TypedStructs.Check(value, where, "disable_host_header_fallback", "tcp_reporting_duration", "reporter");
        var reporter = direction switch
        {
            Envoy.Config.Core.V3.TrafficDirection.Inbound => Reporter.Destination,
            Envoy.Config.Core.V3.TrafficDirection.Outbound => Reporter.Source,
            _ => throw new ProxyConfigException($"{where}: the listener has no traffic_direction; istio.stats reports as source on OUTBOUND listeners and as destination on INBOUND ones"),
        };
        if (value.Fields.TryGetValue("reporter", out var r) && r.StringValue is not ("" or "UNSPECIFIED"))
        {
            throw new ProxyConfigException($"{where}: reporter {r.StringValue} is not supported (waypoints are not); leave it UNSPECIFIED");
        }
        var fallback = !(value.Fields.TryGetValue("disable_host_header_fallback", out var d) && d.BoolValue);
        return new IstioStatsConfig(metrics, local, reporter, fallback);
    }

    /// <summary>Records one finished request: its series by the record's labels, then the counters and histograms.</summary>
    public void Record(HttpStream stream)
    {
        var info = stream.Info;
        var context = stream.Context;
        var grpc = Grpc.IsGrpc(context.Request.ContentType);
        var service = info.UpstreamService ?? (_hostFallback ? ServiceLabels.FromHost(context.Request.Host.Value ?? "") : ServiceLabels.Unknown);
        var code = info.ResponseCode;
        var grpcStatus = grpc ? GrpcStatusOf(context, code) : -1;
        var key = Reporter == Reporter.Destination
            ? new RequestKey(Reporter, info.DownstreamPeer ?? WorkloadMetadata.None, stream.Connection?.Peer?.Spiffe?.Uri ?? "unknown", _local.Metadata,
                stream.Connection?.Peer is not null ? _local.Principal : "unknown", service, grpc, code, grpcStatus, info.Flags,
                stream.Connection?.Peer is not null ? SecurityPolicy.MutualTls : SecurityPolicy.None)
            : new RequestKey(Reporter, _local.Metadata, info.UpstreamHost?.PeerIdentity is not null ? _local.Principal : "unknown", info.UpstreamPeer ?? info.UpstreamHost?.Workload ?? WorkloadMetadata.None,
                info.UpstreamHost?.PeerIdentity?.Uri ?? "unknown", service, grpc, code, grpcStatus, info.Flags, SecurityPolicy.Unknown);
        var duration = stream.Time.GetElapsedTime(info.StartTimestamp, info.EndTimestamp).TotalMilliseconds;
        _metrics.RecordRequest(key, duration, info.BytesReceived, info.BytesSent, info.RequestMessages.Messages, info.ResponseMessages.Messages);
    }

    /// <summary>
    /// The TCP series of a connection, once its upstream is known (or failed). There is no metadata exchange on TCP
    /// yet: the client names the server from its endpoint's telemetry label (the control plane's word, as Istio's
    /// stats filter falls back to it), else by its certificate's namespace; the server knows the client by its
    /// certificate only.
    /// </summary>
    public TcpSeries? OpenTcp(RequestInfo info, Listeners.ConnectionChain connection)
    {
        var service = info.UpstreamService ?? ServiceLabels.Unknown;
        var key = Reporter == Reporter.Destination
            ? new TcpKey(Reporter, WorkloadMetadata.OfIdentity(connection.Peer?.Spiffe), connection.Peer?.Spiffe?.Uri ?? "unknown", _local.Metadata,
                connection.Peer is not null ? _local.Principal : "unknown", service, info.Flags, connection.Peer is not null ? SecurityPolicy.MutualTls : SecurityPolicy.None)
            : new TcpKey(Reporter, _local.Metadata, info.UpstreamHost?.PeerIdentity is not null ? _local.Principal : "unknown", info.UpstreamHost?.Workload ?? WorkloadMetadata.OfIdentity(info.UpstreamHost?.PeerIdentity),
                info.UpstreamHost?.PeerIdentity?.Uri ?? "unknown", service, info.Flags, SecurityPolicy.Unknown);
        var series = _metrics.Tcp(key);
        if (series is not null)
        {
            Interlocked.Increment(ref series.Opened);
        }
        return series;
    }

    /// <summary>
    /// grpc-status from the trailers, else the headers (a trailers-only response), else Envoy's mapping of the HTTP
    /// status (a 503 from the proxy is UNAVAILABLE, 14); -1 for a 200 that carried none.
    /// </summary>
    private static int GrpcStatusOf(HttpContext context, int httpStatus)
    {
        var trailers = context.Features.Get<IHttpResponseTrailersFeature>()?.Trailers;
        if ((trailers is not null && trailers.TryGetValue("grpc-status", out var value)) || context.Response.Headers.TryGetValue("grpc-status", out value))
        {
            return int.TryParse(value.ToString(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var status) ? status : 2;
        }
        return httpStatus switch
        {
            200 => -1,
            400 => 13,
            401 => 16,
            403 => 7,
            404 => 12,
            429 or 502 or 503 or 504 => 14,
            _ => 2,
        };
    }
}
