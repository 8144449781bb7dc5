using System.Threading.Channels;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Snapshots;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Service.Discovery.V3;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Bowline.ControlPlane.Xds;

/// <summary>
/// One state-of-the-world ADS stream: reads the client's requests and the mesh's changes in one loop, and answers with
/// the client's snapshot. Versions are content hashes, so an unchanged set is never resent; a NACKed version is not
/// resent until the config changes; requests with a stale nonce are ignored, as the xDS protocol requires.
/// </summary>
internal sealed partial class AdsStream
{
    private readonly IAsyncStreamReader<DiscoveryRequest> _requests;
    private readonly IServerStreamWriter<DiscoveryResponse> _responses;
    private readonly MeshState _mesh;
    private readonly ConnectedProxies _proxies;
    private readonly Func<ServiceIndex, ProxyNode, XdsSnapshot> _translate;
    private readonly int _maxResponseBytes;
    private readonly ILogger _logger;
    private readonly Dictionary<string, SubscriptionState> _subscriptions = new(StringComparer.Ordinal);
    private ProxyNode? _node;
    private ConnectedProxy? _connection;
    private XdsSnapshot? _snapshot;
    private long _generation = -1;
    private long _generationPublishedAt;

    /// <summary>When this stream's node first spoke: a proxy that connects after a change converges from then, as Istio times from the push.</summary>
    private long _connectedAt;
    private long _nonce;

    /// <param name="translate">Turns a generation's service index into the node's snapshot; <see cref="MeshTranslator.Translate"/> unless a test needs it to fail.</param>
    /// <param name="maxResponseBytes">The largest response sent; <see cref="XdsLimits.MaxMessageBytes"/> unless a test needs a small one.</param>
    public AdsStream(IAsyncStreamReader<DiscoveryRequest> requests, IServerStreamWriter<DiscoveryResponse> responses, MeshState mesh, ConnectedProxies proxies, ILogger logger, Func<ServiceIndex, ProxyNode, XdsSnapshot>? translate = null, int maxResponseBytes = XdsLimits.MaxMessageBytes)
    {
        _maxResponseBytes = maxResponseBytes;
        _requests = requests;
        _responses = responses;
        _mesh = mesh;
        _proxies = proxies;
        _logger = logger;
        _translate = translate ?? MeshTranslator.Translate;
    }

    /// <summary>Set on the TLS port: the identity the client's certificate proves, which the node must claim.</summary>
    public NodeAuthorization? Authorization { get; init; }

    public async Task RunAsync(string peer, CancellationToken cancellationToken)
    {
        // Requests are read off the wire by their own loop, never only between writes: a client whose single loop is
        // writing a large request (an EDS subscription naming 17,000 clusters) while this stream is writing a large
        // response to it would otherwise wait on each other's flow-control windows forever.
        var queued = Channel.CreateBounded<DiscoveryRequest>(new BoundedChannelOptions(XdsLimits.MaxQueuedRequests) { SingleReader = true, SingleWriter = true });
        using var reading = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var pump = PumpRequestsAsync(queued.Writer, reading.Token);
        async Task<DiscoveryRequest?> NextAsync() =>
            await queued.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false) && queued.Reader.TryRead(out var request) ? request : null;
        try
        {
            if (await NextAsync().ConfigureAwait(false) is not { } first)
            {
                return;
            }
            await HandleRequestAsync(first, peer).ConfigureAwait(false);
            var read = NextAsync();
            var change = _mesh.WaitForChangeAsync(_generation, cancellationToken);
            while (true)
            {
                if (await Task.WhenAny(read, change).ConfigureAwait(false) == read)
                {
                    if (await read.ConfigureAwait(false) is not { } request)
                    {
                        return;
                    }
                    await HandleRequestAsync(request, peer).ConfigureAwait(false);
                    read = NextAsync();
                }
                else
                {
                    await change.ConfigureAwait(false);
                    await PushChangesAsync().ConfigureAwait(false);
                    change = _mesh.WaitForChangeAsync(_generation, cancellationToken);
                }
            }
        }
        finally
        {
            await reading.CancelAsync().ConfigureAwait(false);
            await pump.ConfigureAwait(false);
            if (_connection is not null)
            {
                _proxies.Remove(_connection);
                ControlPlaneMetrics.Disconnected();
                LogDisconnected(_logger, _connection.Node.Id);
            }
        }
    }

    /// <summary>Moves requests from the wire to the queue until the client ends the stream; an error ends the queue with it, so the loop sees it.</summary>
    private async Task PumpRequestsAsync(ChannelWriter<DiscoveryRequest> queue, CancellationToken cancellationToken)
    {
        Exception? error = null;
        try
        {
            while (await _requests.MoveNext(cancellationToken).ConfigureAwait(false))
            {
                await queue.WriteAsync(_requests.Current, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            error = e;
        }
        finally
        {
            queue.TryComplete(error);
        }
    }

    private async Task HandleRequestAsync(DiscoveryRequest request, string peer)
    {
        if (_node is null)
        {
            if (request.Node is null)
            {
                ControlPlaneMetrics.InvalidNodes.Add(1);
                throw new RpcException(new Status(StatusCode.InvalidArgument, "the first DiscoveryRequest on a stream must carry node (id and metadata)"));
            }
            try
            {
                _node = ProxyNode.From(request.Node);
                if (_node.KindDefaulted && ProxylessDetection.AsksForApiListeners(request))
                {
                    _node = _node.AsProxyless();
                    LogRecognisedProxyless(_logger, _node.Id, string.Join(", ", request.ResourceNames));
                }
            }
            catch (FormatException e)
            {
                ControlPlaneMetrics.InvalidNodes.Add(1);
                LogInvalidNode(_logger, peer, e.Message);
                throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
            }
            if (Authorization is { } authorization)
            {
                _node = authorization.Authorize(request.Node, _node, _logger);
            }
            _connection = _proxies.Add(_node, peer, Authorization?.Identity.SpiffeId(Authorization.TrustDomain));
            _connectedAt = _mesh.Time.GetTimestamp();
            ControlPlaneMetrics.Connected();
            LogConnected(_logger, _node.Id, _node.Kind, peer);
            RefreshSnapshot();
        }
        else if (_node.KindDefaulted && ProxylessDetection.AsksForApiListeners(request))
        {
            // A gRPC client whose first request was not LDS: serve it the proxyless generator from now on, resending
            // what it already subscribed to in that shape, before its listener subscription is answered below.
            _node = _node.AsProxyless();
            _connection!.Reclassify(_node);
            LogRecognisedProxyless(_logger, _node.Id, string.Join(", ", request.ResourceNames));
            _generation = -1;
            await PushChangesAsync().ConfigureAwait(false);
        }

        var type = request.TypeUrl;
        var isFirst = !_subscriptions.TryGetValue(type, out var state);
        state ??= _subscriptions[type] = new SubscriptionState(type);

        // Until this type has been answered on the stream there is no nonce, and the client's request carries proto3's
        // empty string: that request is a subscription change, not a stale one, and neither an ACK nor a NACK.
        var answered = state.SentNonce is not null;
        if (!isFirst && request.ResponseNonce != (state.SentNonce ?? ""))
        {
            // Stale: the client has not seen our latest response of this type yet.
            return;
        }
        if (!isFirst && answered)
        {
            if (request.ErrorDetail is { } error)
            {
                state.RejectedVersion = state.SentVersion;
                state.RejectReason = error.Message;
                ControlPlaneMetrics.Rejected(TypeUrls.ShortName(type));
                LogNack(_logger, _node!.Id, TypeUrls.ShortName(type), state.SentVersion ?? "", error.Message);
            }
            else
            {
                state.AckedVersion = request.VersionInfo;
                state.RejectedVersion = null;
                state.RejectReason = null;
            }
            _connection!.Update(type, state);
            RecordConvergence();
        }
        if (state.Subscribe(request.ResourceNames, isFirst))
        {
            await SendAsync(state, force: true).ConfigureAwait(false);
        }
        _connection!.Processed(_generation);
    }

    /// <summary>
    /// Istio's pilot_proxy_convergence_time, once per config generation that reached this proxy: from the change to
    /// the ACK that completed it (every type it changed, and the RDS and EDS follow-ups those asked for). Generations
    /// complete in order: one waiting on a type holds back the later ones, which then record their own, longer, delay;
    /// a NACKed or undeliverable one records nothing and holds back nothing.
    /// </summary>
    private void RecordConvergence()
    {
        var pending = _subscriptions.Values.Where(s => s.SentGeneration > _connection!.ConvergedGeneration)
            .GroupBy(s => s.SentGeneration).OrderBy(g => g.Key);
        foreach (var generation in pending)
        {
            switch (_connection!.StatusOf(generation.Key).State)
            {
                case ChangeState.Applied:
                    ControlPlaneMetrics.Converged(_mesh.Time.GetElapsedTime(generation.First().SentGenerationPublishedAt).TotalSeconds);
                    break;
                case ChangeState.Nacked or ChangeState.Failed:
                    // It never converges; it must not hold back the generations after it.
                    break;
                default:
                    return;
            }
            _connection.Converged(generation.Key);
        }
    }

    /// <summary>The names a response of <paramref name="typeUrl"/> makes the client subscribe to (<see cref="SubscriptionState.FollowUps"/>).</summary>
    private static IReadOnlySet<string> FollowUps(string typeUrl, IReadOnlyList<NamedResource> resources) => typeUrl switch
    {
        TypeUrls.Listener => resources.SelectMany(r => ResourceReferences.RouteConfigNames((Envoy.Config.Listener.V3.Listener)r.Message)).ToHashSet(StringComparer.Ordinal),
        TypeUrls.Cluster => resources.Select(r => ResourceReferences.EndpointsName((Envoy.Config.Cluster.V3.Cluster)r.Message)).OfType<string>().ToHashSet(StringComparer.Ordinal),
        _ => SubscriptionState.EmptyNames,
    };

    private async Task PushChangesAsync()
    {
        RefreshSnapshot();
        // Additions in the safe order (clusters, endpoints, listeners, routes), but a cluster the new routes no longer
        // name is removed only after the routes: first send the new clusters plus the ones going away, last the final set.
        var removingClusters = _subscriptions.TryGetValue(TypeUrls.Cluster, out var clusters) && RemovedBy(clusters).Count > 0;
        foreach (var type in TypeUrls.PushOrder)
        {
            if (_subscriptions.TryGetValue(type, out var state))
            {
                await SendAsync(state, force: false, keep: removingClusters && type == TypeUrls.Cluster ? RemovedBy(state) : null).ConfigureAwait(false);
            }
        }
        if (removingClusters)
        {
            await SendAsync(clusters!, force: false).ConfigureAwait(false);
        }
        _connection!.Processed(_generation);
    }

    /// <summary>What the current snapshot would remove from what the client has of this type.</summary>
    private IReadOnlyList<NamedResource> RemovedBy(SubscriptionState state)
    {
        var current = _snapshot?.Get(state.TypeUrl)?.Resources;
        return current is null ? [] : state.SentResources.Where(r => !current.ContainsKey(r.Name)).ToList();
    }

    private void RefreshSnapshot()
    {
        var index = _mesh.Current;
        if (index.Config.Generation == _generation)
        {
            return;
        }
        _generation = index.Config.Generation;
        _generationPublishedAt = index.PublishedAt;
        try
        {
            _snapshot = _translate(index, _node!);
            _mesh.ReportWarnings(_generation, _snapshot.Warnings);
            _connection?.Recovered();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A broken invariant in translation: keep serving the last good snapshot, loudly.
            ControlPlaneMetrics.TranslationFailures.Add(1);
            LogTranslationFailed(_logger, _node!.Id, _generation, e.Message);
            _connection?.Failed(_generation, $"translation failed, the proxy keeps its last config: {e.Message}");
        }
    }

    private async Task SendAsync(SubscriptionState state, bool force, IReadOnlyList<NamedResource>? keep = null)
    {
        if (_snapshot is null)
        {
            // Translation has never succeeded for this node: say nothing rather than tell it to delete everything.
            _connection?.Failed(_generation, "no configuration could be translated for this proxy yet (see the control plane's log)");
            return;
        }
        var set = _snapshot.Get(state.TypeUrl);
        var (resources, version) = set is null ? ([], "empty") : set.Select(state.Names);
        if (keep is { Count: > 0 })
        {
            resources = [.. resources, .. keep];
            version = ResourceVersion.Of(resources.Select(r => KeyValuePair.Create(r.Name, r.Version)));
        }
        if (!force && (version == state.SentVersion))
        {
            return;
        }
        var response = new DiscoveryResponse
        {
            TypeUrl = state.TypeUrl,
            VersionInfo = version,
            Nonce = (++_nonce).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ControlPlane = new Envoy.Config.Core.V3.ControlPlane { Identifier = "bowline" },
        };
        foreach (var resource in resources)
        {
            response.Resources.Add(resource.Packed);
        }
        var size = response.CalculateSize();
        if (size > _maxResponseBytes)
        {
            // Sending it would end the stream (the client rejects it, or gRPC refuses to send it), and every reconnect
            // would try again: skip it, so the client keeps its last version and the next change still reaches it.
            ControlPlaneMetrics.OversizedResponses.Add(1);
            LogOversized(_logger, _node!.Id, TypeUrls.ShortName(state.TypeUrl), version, resources.Count, size, _maxResponseBytes);
            _connection?.Failed(_generation, $"{TypeUrls.ShortName(state.TypeUrl)} response of {size} bytes is over the {_maxResponseBytes}-byte limit and was not sent");
            return;
        }
        if (version != state.SentVersion)
        {
            state.SentGeneration = _generation;
            state.SentGenerationPublishedAt = Math.Max(_generationPublishedAt, _connectedAt);
            // The version is the content's hash: a resend of the same version names the same follow-ups.
            state.FollowUps = FollowUps(state.TypeUrl, resources);
        }
        state.SentVersion = version;
        state.SentNonce = response.Nonce;
        state.SentResources = resources;
        _connection!.Update(state.TypeUrl, state);
        ControlPlaneMetrics.Pushed(TypeUrls.ShortName(state.TypeUrl), _mesh.Time.GetElapsedTime(Math.Max(_generationPublishedAt, _connectedAt)).TotalSeconds);
        LogPush(_logger, _node!.Id, TypeUrls.ShortName(state.TypeUrl), version, resources.Count);
        await _responses.WriteAsync(response).ConfigureAwait(false);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "xds: {Node} connected ({Kind}) from {Peer}")]
    private static partial void LogConnected(ILogger logger, string node, ProxyKind kind, string peer);

    [LoggerMessage(Level = LogLevel.Information, Message = "xds: {Node} declares no GENERATOR but asks for listeners {Names}: serving it as a proxyless gRPC client")]
    private static partial void LogRecognisedProxyless(ILogger logger, string node, string names);

    [LoggerMessage(Level = LogLevel.Information, Message = "xds: {Node} disconnected")]
    private static partial void LogDisconnected(ILogger logger, string node);

    [LoggerMessage(Level = LogLevel.Warning, Message = "xds: refused a stream from {Peer}: {Reason}")]
    private static partial void LogInvalidNode(ILogger logger, string peer, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "xds: {Node} rejected (NACK) {Type} version {Version}: {Reason}; it keeps its last good version")]
    private static partial void LogNack(ILogger logger, string node, string type, string version, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "xds: push {Type} {Version} ({Count} resources) to {Node}")]
    private static partial void LogPush(ILogger logger, string node, string type, string version, int count);

    [LoggerMessage(Level = LogLevel.Error, Message = "xds: {Node}: {Type} version {Version} ({Count} resources) is {Size} bytes, over the {Limit}-byte xDS message limit; not sent, the proxy keeps its previous version. Split the config (fewer ports or hosts per Service)")]
    private static partial void LogOversized(ILogger logger, string node, string type, string version, int count, int size, int limit);

    [LoggerMessage(Level = LogLevel.Error, Message = "xds: translation for {Node} at generation {Generation} failed; it keeps its last good snapshot: {Reason}")]
    private static partial void LogTranslationFailed(ILogger logger, string node, long generation, string reason);
}
