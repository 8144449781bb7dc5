using Bowline.Proxy.Stats;
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
/// config keeps serving.
/// </summary>
internal sealed partial class AdsClient(ProxyOptions options, ConfigApplier applier, ProxyStats stats, TimeProvider time, Random random, ILogger<AdsClient> logger) : IDisposable
{
    private readonly GrpcChannel _channel = GrpcChannel.ForAddress(options.XdsAddress, new GrpcChannelOptions
    {
        HttpHandler = new SocketsHttpHandler
        {
            // A sidecar is often started from a shell whose HTTP_PROXY points at a sidecar; xDS must never go through it.
            UseProxy = false,
            ConnectTimeout = TimeSpan.FromSeconds(5),
            KeepAlivePingDelay = TimeSpan.FromSeconds(30),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
            EnableMultipleHttp2Connections = false,
        },
        MaxReceiveMessageSize = 64 * 1024 * 1024,
        // gRPC's own reconnect backoff (1 s to 120 s by default) sits under ours; bound it by the same options, or MaxBackoff is not the real bound.
        InitialReconnectBackoff = options.InitialBackoff,
        MaxReconnectBackoff = options.MaxBackoff,
    });
    private readonly Stat _connected = stats.Get("control_plane.connected_state");
    private readonly Stat _accepted = stats.Get("control_plane.xds.update_success");
    private readonly Stat _rejected = stats.Get("control_plane.xds.update_rejected");
    private readonly Stat _reconnects = stats.Get("control_plane.xds.reconnects");

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var backoff = options.InitialBackoff;
        while (!cancellationToken.IsCancellationRequested)
        {
            var healthy = false;
            try
            {
                healthy = await RunStreamAsync(cancellationToken).ConfigureAwait(false);
                LogStreamClosed(logger, options.XdsAddress, "the control plane closed the stream");
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
            {
                return;
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

    /// <summary>Runs one stream until it ends; true when it delivered at least one response (so backoff resets).</summary>
    private async Task<bool> RunStreamAsync(CancellationToken cancellationToken)
    {
        var client = new AggregatedDiscoveryService.AggregatedDiscoveryServiceClient(_channel);
        using var call = client.StreamAggregatedResources(cancellationToken: cancellationToken);
        var nonces = new Dictionary<string, string>(StringComparer.Ordinal);
        var subscribed = new Dictionary<string, IReadOnlySet<string>>(StringComparer.Ordinal);
        var first = true;

        async Task SendAsync(string typeUrl, IReadOnlySet<string>? names, Google.Rpc.Status? error = null)
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
            await call.RequestStream.WriteAsync(request, cancellationToken).ConfigureAwait(false);
        }

        async Task SubscribeDependenciesAsync()
        {
            var (routes, endpoints) = applier.Dependencies();
            if (!subscribed.TryGetValue(TypeUrls.ClusterLoadAssignment, out var eds) ? endpoints.Count > 0 : !eds.SetEquals(endpoints))
            {
                await SendAsync(TypeUrls.ClusterLoadAssignment, endpoints).ConfigureAwait(false);
            }
            if (!subscribed.TryGetValue(TypeUrls.RouteConfiguration, out var rds) ? routes.Count > 0 : !rds.SetEquals(routes))
            {
                await SendAsync(TypeUrls.RouteConfiguration, routes).ConfigureAwait(false);
            }
        }

        // Clusters before listeners; after a reconnect, resubscribe to what we had, with the versions we hold.
        await SendAsync(TypeUrls.Cluster, null).ConfigureAwait(false);
        await SendAsync(TypeUrls.Listener, null).ConfigureAwait(false);
        await SubscribeDependenciesAsync().ConfigureAwait(false);
        LogConnected(logger, options.XdsAddress);
        _connected.Set(1);

        var delivered = false;
        while (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            delivered = true;
            var response = call.ResponseStream.Current;
            nonces[response.TypeUrl] = response.Nonce;
            var error = await applier.ApplyAsync(response.TypeUrl, response.Resources, response.VersionInfo, cancellationToken).ConfigureAwait(false);
            if (error is null)
            {
                _accepted.Increment();
                await SendAsync(response.TypeUrl, subscribed.GetValueOrDefault(response.TypeUrl)).ConfigureAwait(false);
            }
            else
            {
                _rejected.Increment();
                // NACK: the nonce of what we reject, the version we still run, and why.
                await SendAsync(response.TypeUrl, subscribed.GetValueOrDefault(response.TypeUrl), new Google.Rpc.Status { Code = (int)StatusCode.InvalidArgument, Message = error }).ConfigureAwait(false);
            }
            if (response.TypeUrl is TypeUrls.Listener or TypeUrls.Cluster)
            {
                await SubscribeDependenciesAsync().ConfigureAwait(false);
            }
        }
        return delivered;
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
        if (options.GatewayPorts.Count > 0)
        {
            var gateway = new Struct();
            foreach (var (declared, bound) in options.GatewayPorts)
            {
                gateway.Fields[declared.ToString(System.Globalization.CultureInfo.InvariantCulture)] = Value.ForString(bound.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            metadata.Fields[NodeMetadata.GatewayPorts] = Value.ForStruct(gateway);
        }
        return new Node
        {
            Id = options.NodeId,
            Cluster = options.NodeCluster.Length > 0 ? options.NodeCluster : options.Labels.GetValueOrDefault("app", options.WorkloadName),
            Metadata = metadata,
            UserAgentName = "bowline",
            UserAgentVersion = typeof(AdsClient).Assembly.GetName().Version?.ToString() ?? "0",
        };
    }

    public void Dispose() => _channel.Dispose();

    [LoggerMessage(Level = LogLevel.Information, Message = "xds: connected to {Address}")]
    private static partial void LogConnected(ILogger logger, Uri address);

    [LoggerMessage(Level = LogLevel.Warning, Message = "xds: stream to {Address} ended ({Reason}); serving the last good config and reconnecting")]
    private static partial void LogStreamClosed(ILogger logger, Uri address, string reason);
}
