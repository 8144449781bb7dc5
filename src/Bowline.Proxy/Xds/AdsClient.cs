using System.Threading.Channels;
using Bowline.Proxy.Identity;
using Bowline.Proxy.Stats;
using Bowline.Proxy.Tls;
using Bowline.Xds;
using Envoy.Config.Core.V3;
using Envoy.Service.Discovery.V3;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;

namespace Bowline.Proxy.Xds;

/// <summary>
/// The proxy's xDS client: one ADS stream (state of the world) to the control plane. It subscribes to listeners and
/// clusters (wildcard), then to exactly the routes and endpoints those name; ACKs what applies, NACKs what does not
/// with the reason; and when the stream breaks, reconnects with jittered exponential backoff while the last good
/// config keeps serving. Requests are written by their own loop, so reading responses never waits on a write (two
/// peers that each wait to write before they read would wedge on HTTP/2 flow control), and a stream that owes a write
/// or a response and delivers nothing for <see cref="AdsProgressOptions.StallTimeout"/> is reopened.
/// </summary>
internal sealed partial class AdsClient(ProxyOptions options, ConfigApplier applier, ProxyStats stats, SecretStore secrets, TimeProvider time, Random random, ILogger<AdsClient> logger, AdsProgressOptions? progressOptions = null) : IDisposable
{
    // Null on plaintext; on the TLS port, the server is verified against the mesh root and the workload certificate is presented.
    private readonly ControlPlaneTls? _tls = ControlPlaneTls.For(options, secrets, stats, time, logger);
    private GrpcChannel? _channel;
    private readonly TimeSpan _stallTimeout = (progressOptions ?? new AdsProgressOptions()).StallTimeout;
    private readonly Stat _connected = stats.Get("control_plane.connected_state");
    private readonly Stat _accepted = stats.Get("control_plane.xds.update_success");
    private readonly Stat _rejected = stats.Get("control_plane.xds.update_rejected");
    private readonly Stat _reconnects = stats.Get("control_plane.xds.reconnects");
    private readonly Stat _stalled = stats.Get("control_plane.xds.stalled_streams");
    private readonly Stat _refused = stats.Get("control_plane.xds.refused");
    private readonly Dictionary<string, XdsTypeStats> _typeStats = new(StringComparer.Ordinal);

    // A gauge: requests queued on the stream and not yet written. Stuck above zero, the control plane is not reading.
    private readonly Stat _queued = stats.Get("control_plane.xds.requests_queued");

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var backoff = options.InitialBackoff;
        while (!cancellationToken.IsCancellationRequested)
        {
            var healthy = false;
            try
            {
                if (_tls is { HasClientCertificate: false })
                {
                    // ADS on the TLS port serves only a proxy that proves who it is; the agent is still asking the CA.
                    LogWaitingForCertificate(logger, options.XdsAddress);
                    await _tls.WaitForClientCertificateAsync(cancellationToken).ConfigureAwait(false);
                }
                (healthy, var reason) = await RunStreamAsync(cancellationToken).ConfigureAwait(false);
                LogStreamClosed(logger, options.XdsAddress, reason);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unauthenticated or StatusCode.PermissionDenied)
            {
                // Refused for who we are: the next attempt handshakes afresh, so it presents the certificate the
                // agent holds by then instead of what this connection was opened with.
                _refused.Increment();
                LogRefused(logger, options.XdsAddress, e.StatusCode, e.Status.Detail);
                ResetChannel();
            }
            catch (Exception e) when (e is RpcException or IOException or HttpRequestException or InvalidOperationException)
            {
                LogStreamClosed(logger, options.XdsAddress, e is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : e.Message);
            }
            finally
            {
                _connected.Set(0);
            }
            if (healthy)
            {
                backoff = options.InitialBackoff;
            }
            // Full jitter: proxies that lost the same control plane do not all come back at the same instant.
            var delay = TimeSpan.FromMilliseconds(random.NextDouble() * backoff.TotalMilliseconds);
            _reconnects.Increment();
            await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
            backoff = TimeSpan.FromTicks(Math.Min(options.MaxBackoff.Ticks, backoff.Ticks * 2));
        }
    }

    /// <summary>Runs one stream until it ends; Delivered when it delivered at least one response (so backoff resets), and why it ended.</summary>
    private async Task<(bool Delivered, string Reason)> RunStreamAsync(CancellationToken cancellationToken)
    {
        using var stream = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var progress = new StreamProgress(time, _stallTimeout, () => _ = stream.CancelAsync());
        var client = new AggregatedDiscoveryService.AggregatedDiscoveryServiceClient(_channel ??= CreateChannel());
        using var call = client.StreamAggregatedResources(cancellationToken: stream.Token);
        var outgoing = Channel.CreateUnbounded<DiscoveryRequest>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var writing = WriteRequestsAsync(call.RequestStream, outgoing.Reader, progress, stream);
        var nonces = new Dictionary<string, string>(StringComparer.Ordinal);
        var subscribed = new Dictionary<string, IReadOnlySet<string>>(StringComparer.Ordinal);
        var first = true;
        var delivered = false;

        void Send(string typeUrl, IReadOnlySet<string>? names, bool expectsResponse, Google.Rpc.Status? error = null)
        {
            var request = new DiscoveryRequest
            {
                TypeUrl = typeUrl,
                VersionInfo = applier.VersionOf(typeUrl) ?? "",
                ResponseNonce = nonces.GetValueOrDefault(typeUrl, ""),
                ErrorDetail = error,
            };
            if (names is not null)
            {
                request.ResourceNames.AddRange(names.Order(StringComparer.Ordinal));
                subscribed[typeUrl] = names;
            }
            if (first)
            {
                request.Node = Node();
                first = false;
            }
            progress.Queued(typeUrl, expectsResponse);
            _queued.Increment();
            outgoing.Writer.TryWrite(request);
        }

        void SubscribeDependencies()
        {
            var (routes, endpoints) = applier.Dependencies();
            if (!subscribed.TryGetValue(TypeUrls.ClusterLoadAssignment, out var eds) ? endpoints.Count > 0 : !eds.SetEquals(endpoints))
            {
                Send(TypeUrls.ClusterLoadAssignment, endpoints, expectsResponse: true);
            }
            if (!subscribed.TryGetValue(TypeUrls.RouteConfiguration, out var rds) ? routes.Count > 0 : !rds.SetEquals(routes))
            {
                Send(TypeUrls.RouteConfiguration, routes, expectsResponse: true);
            }
            // SDS over ADS for the secrets the listeners and clusters fetch from the control plane (gateway credentials).
            var secrets = applier.SecretDependencies();
            if (!subscribed.TryGetValue(TypeUrls.Secret, out var sds) ? secrets.Count > 0 : !sds.SetEquals(secrets))
            {
                Send(TypeUrls.Secret, secrets, expectsResponse: true);
            }
        }

        try
        {
            // Clusters before listeners; after a reconnect, resubscribe to what we had, with the versions we hold.
            Send(TypeUrls.Cluster, null, expectsResponse: true);
            Send(TypeUrls.Listener, null, expectsResponse: true);
            SubscribeDependencies();

            while (await call.ResponseStream.MoveNext(stream.Token).ConfigureAwait(false))
            {
                delivered = true;
                var response = call.ResponseStream.Current;
                progress.Received(response.TypeUrl);
                nonces[response.TypeUrl] = response.Nonce;
                string? error;
                if (!_typeStats.TryGetValue(response.TypeUrl, out var typeStats))
                {
                    typeStats = _typeStats[response.TypeUrl] = XdsTypeStats.For(stats, response.TypeUrl);
                }
                typeStats.Attempted();
                progress.BeginLocalWork();
                try
                {
                    error = await applier.ApplyAsync(response.TypeUrl, response.Resources, response.VersionInfo, stream.Token).ConfigureAwait(false);
                }
                finally
                {
                    progress.EndLocalWork();
                }
                if (error is null)
                {
                    _accepted.Increment();
                    typeStats.Accepted(response.VersionInfo, time.GetUtcNow());
                    Send(response.TypeUrl, subscribed.GetValueOrDefault(response.TypeUrl), expectsResponse: false);
                }
                else
                {
                    _rejected.Increment();
                    typeStats.Rejected();
                    // NACK: the nonce of what we reject, the version we still run, and why.
                    Send(response.TypeUrl, subscribed.GetValueOrDefault(response.TypeUrl), expectsResponse: false, new Google.Rpc.Status { Code = (int)StatusCode.InvalidArgument, Message = error });
                }
                if (response.TypeUrl is TypeUrls.Listener or TypeUrls.Cluster)
                {
                    SubscribeDependencies();
                }
            }
            return (delivered, "the control plane closed the stream");
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && progress.Stalled && e is OperationCanceledException or RpcException or IOException or HttpRequestException)
        {
            // The stream looked connected but moved nothing (a wedged write, a request never answered): neither end
            // would have said so. Reopening resends every subscription with the versions we hold.
            _stalled.Increment();
            LogStalled(logger, options.XdsAddress, progress.Timeout, progress.Describe());
            return (delivered, $"no progress for {progress.Timeout.TotalSeconds:0} s; reopening");
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled })
        {
            // Our own cancellation of the stream after a failed write: report the write's error, not the cancellation.
            if (await writing.ConfigureAwait(false) is { } writeError)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(writeError);
            }
            throw;
        }
        finally
        {
            outgoing.Writer.TryComplete();
            await stream.CancelAsync().ConfigureAwait(false);
            await writing.ConfigureAwait(false);
            // What was still queued dies with the stream; the next one resubscribes from scratch.
            _queued.Set(0);
        }
    }

    /// <summary>
    /// Writes queued requests in order until the stream ends; a failed write cancels the stream and is returned, so the
    /// reading side reports it. The first write that completes means the stream is up.
    /// </summary>
    private async Task<Exception?> WriteRequestsAsync(IClientStreamWriter<DiscoveryRequest> writer, ChannelReader<DiscoveryRequest> requests, StreamProgress progress, CancellationTokenSource stream)
    {
        var connected = false;
        try
        {
            await foreach (var request in requests.ReadAllAsync(stream.Token).ConfigureAwait(false))
            {
                await writer.WriteAsync(request, stream.Token).ConfigureAwait(false);
                progress.Written();
                _queued.Decrement();
                if (!connected)
                {
                    connected = true;
                    LogConnected(logger, options.XdsAddress);
                    _connected.Set(1);
                }
            }
            return null;
        }
        catch (Exception e)
        {
            await stream.CancelAsync().ConfigureAwait(false);
            return e;
        }
    }

    private Node Node()
    {
        var labels = new Struct();
        foreach (var (key, value) in options.Labels)
        {
            labels.Fields[key] = Value.ForString(value);
        }
        var metadata = new Struct
        {
            Fields =
            {
                [NodeMetadata.Name] = Value.ForString(options.WorkloadName),
                [NodeMetadata.Namespace] = Value.ForString(options.Namespace),
                [NodeMetadata.Labels] = Value.ForStruct(labels),
                [NodeMetadata.ServiceAccount] = Value.ForString(options.ServiceAccount),
                [NodeMetadata.InterceptionMode] = Value.ForString("NONE"),
                [NodeMetadata.ClusterId] = Value.ForString(options.ClusterId),
                [NodeMetadata.BindAddress] = Value.ForString(options.BindAddress.ToString()),
            },
        };
        if (options.OutboundPort is { } outbound)
        {
            metadata.Fields[NodeMetadata.OutboundPort] = Value.ForString(outbound.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        if (options.InboundPorts.Count > 0)
        {
            var inbound = new Struct();
            foreach (var port in options.InboundPorts)
            {
                inbound.Fields[port.ContainerPort.ToString(System.Globalization.CultureInfo.InvariantCulture)] = Value.ForString($"{port.ListenPort}:{port.AppPort}");
            }
            metadata.Fields[NodeMetadata.InboundPorts] = Value.ForStruct(inbound);
        }
        if (options.OutboundTcpPorts.Count > 0)
        {
            var tcp = new Struct();
            foreach (var (service, local) in options.OutboundTcpPorts)
            {
                tcp.Fields[service] = Value.ForString(local.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            metadata.Fields[NodeMetadata.OutboundTcpPorts] = Value.ForStruct(tcp);
        }
        if (options.GatewayPorts.Count > 0)
        {
            var gateway = new Struct();
            foreach (var (declared, bound) in options.GatewayPorts)
            {
                gateway.Fields[declared.ToString(System.Globalization.CultureInfo.InvariantCulture)] = Value.ForString(bound.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            metadata.Fields[NodeMetadata.GatewayPorts] = Value.ForStruct(gateway);
        }
        var locality = options.Locality.Split('/');
        return new Node
        {
            Id = options.NodeId,
            Locality = new Envoy.Config.Core.V3.Locality
            {
                Region = locality.ElementAtOrDefault(0) ?? "",
                Zone = locality.ElementAtOrDefault(1) ?? "",
                SubZone = locality.ElementAtOrDefault(2) ?? "",
            },
            Cluster = ServiceCluster(options),
            Metadata = metadata,
            UserAgentName = "bowline",
            UserAgentVersion = typeof(AdsClient).Assembly.GetName().Version?.ToString() ?? "0",
        };
    }

    /// <summary>
    /// The node's cluster, which names the proxy's spans: Istio's default (<c>serviceClusterOrDefault</c>) is the
    /// workload's app (the <c>app</c>, <c>app.kubernetes.io/name</c> or canonical-name label) or, without one, its
    /// name, followed by <c>.namespace</c>, so one service's spans from two namespaces stay apart.
    /// </summary>
    internal static string ServiceCluster(ProxyOptions options)
    {
        if (options.NodeCluster.Length > 0 && options.NodeCluster != "istio-proxy")
        {
            return options.NodeCluster;
        }
        string[] appLabels = ["app", "app.kubernetes.io/name", "service.istio.io/canonical-name"];
        var app = appLabels.Select(options.Labels.GetValueOrDefault).FirstOrDefault(v => !string.IsNullOrEmpty(v));
        var name = app ?? (options.WorkloadName.Length > 0 ? options.WorkloadName : "istio-proxy");
        return options.Namespace.Length > 0 ? $"{name}.{options.Namespace}" : name;
    }

    private GrpcChannel CreateChannel()
    {
        var handler = new SocketsHttpHandler
        {
            // A sidecar is often started from a shell whose HTTP_PROXY points at a sidecar; xDS must never go through it.
            UseProxy = false,
            ConnectTimeout = TimeSpan.FromSeconds(5),
            KeepAlivePingDelay = TimeSpan.FromSeconds(30),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
            EnableMultipleHttp2Connections = false,
            InitialHttp2StreamWindowSize = AdsChannelLimits.Http2StreamWindowBytes,
        };
        _tls?.Apply(handler);
        return GrpcChannel.ForAddress(options.XdsAddress, new GrpcChannelOptions
        {
            HttpHandler = handler,
            MaxReceiveMessageSize = AdsChannelLimits.MaxMessageBytes,
            MaxSendMessageSize = AdsChannelLimits.MaxMessageBytes,
            // gRPC's own reconnect backoff (1 s to 120 s by default) sits under ours; bound it by the same options, or MaxBackoff is not the real bound.
            InitialReconnectBackoff = options.InitialBackoff,
            MaxReconnectBackoff = options.MaxBackoff,
        });
    }

    private void ResetChannel()
    {
        _channel?.Dispose();
        _channel = null;
    }

    public void Dispose() => _channel?.Dispose();

    [LoggerMessage(Level = LogLevel.Information, Message = "xds: waiting for the workload certificate before opening ADS on {Address} (it needs mutual TLS)")]
    private static partial void LogWaitingForCertificate(ILogger logger, Uri address);

    [LoggerMessage(Level = LogLevel.Error, Message = "xds: {Address} refused this proxy ({Status}: {Reason}); counted in control_plane.xds.refused, retrying with backoff")]
    private static partial void LogRefused(ILogger logger, Uri address, StatusCode status, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "xds: connected to {Address}")]
    private static partial void LogConnected(ILogger logger, Uri address);

    [LoggerMessage(Level = LogLevel.Warning, Message = "xds: stream to {Address} made no progress for {Timeout} ({Owed}); counted in control_plane.xds.stalled_streams, reopening it")]
    private static partial void LogStalled(ILogger logger, Uri address, TimeSpan timeout, string owed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "xds: stream to {Address} ended ({Reason}); serving the last good config and reconnecting")]
    private static partial void LogStreamClosed(ILogger logger, Uri address, string reason);
}
