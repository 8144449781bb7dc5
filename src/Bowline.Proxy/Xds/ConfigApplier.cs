using Bowline.Proxy.Clusters;
using Bowline.Proxy.Configuration;
using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;

namespace Bowline.Proxy.Xds;

/// <summary>
/// The proxy's main loop half that owns configuration: takes one xDS response, builds the candidate snapshot, opens
/// the listeners it needs, and only then swaps it in. Any failure leaves the last good snapshot serving and becomes
/// the NACK reason. Called from the xDS loop only.
/// </summary>
internal sealed partial class ConfigApplier(SnapshotHolder holder, ProxyConfigCompiler compiler, ConnectionPools pools, ClusterManager clusters, Listeners.ListenerManager listeners, Tls.SecretStore secrets, TimeProvider time, ILogger<ConfigApplier> logger)
{
    // The SDS secrets the control plane has put in the store, so those no listener or cluster names any more are dropped.
    private readonly HashSet<string> _controlPlaneSecrets = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IReadOnlyDictionary<string, AcceptedResource>> _accepted = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _versions = new(StringComparer.Ordinal);
    private long _version;
    private bool _initialized;

    /// <summary>True once listeners and clusters have arrived and been applied at least once.</summary>
    /// <remarks>Read by admin requests on other threads; written by the xDS loop after each apply.</remarks>
    public bool Initialized => Volatile.Read(ref _initialized);

    public string? VersionOf(string typeUrl) => _versions.GetValueOrDefault(typeUrl);

    /// <summary>Applies a state-of-the-world response; returns null on success, else why it was rejected.</summary>
    public async Task<string?> ApplyAsync(string typeUrl, IReadOnlyList<Any> resources, string versionInfo, CancellationToken cancellationToken)
    {
        if (typeUrl == TypeUrls.Secret)
        {
            return ApplySecrets(resources, versionInfo);
        }
        try
        {
            var now = time.GetUtcNow();
            var received = new Dictionary<string, AcceptedResource>(StringComparer.Ordinal);
            foreach (var any in resources)
            {
                var (name, message) = Unpack(typeUrl, any);
                if (!received.TryAdd(name, new AcceptedResource(name, message, versionInfo, now)))
                {
                    throw new ProxyConfigException($"{TypeUrls.ShortName(typeUrl)} response lists {name} twice");
                }
            }
            // LDS and CDS responses are complete sets; RDS and EDS responses update the named resources only.
            IReadOnlyDictionary<string, AcceptedResource> merged = TypeUrls.IsWildcardType(typeUrl) || !_accepted.TryGetValue(typeUrl, out var current)
                ? received
                : current.Where(kv => !received.ContainsKey(kv.Key)).Concat(received).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);

            var candidate = new Dictionary<string, IReadOnlyDictionary<string, AcceptedResource>>(_accepted, StringComparer.Ordinal) { [typeUrl] = merged };
            if (typeUrl is TypeUrls.Listener or TypeUrls.Cluster)
            {
                PruneUnreferenced(candidate);
            }
            var versions = new Dictionary<string, string>(_versions, StringComparer.Ordinal) { [typeUrl] = versionInfo };
            var snapshot = KeepWarmListeners(compiler.Compile(_version + 1, candidate, versions, holder.Current), holder.Current);
            var commit = await listeners.PrepareAsync(snapshot, cancellationToken).ConfigureAwait(false);

            // Clusters first: the routes of the new listeners may name clusters this update adds.
            clusters.Commit();
            holder.Swap(snapshot);
            commit();
            pools.Commit();
            clusters.Prune(snapshot.Listeners.Values.SelectMany(l => l.Chains).Select(c => c.Routes).OfType<Routing.RouteTable>()
                .SelectMany(t => t.ClusterNames).Concat(snapshot.Listeners.Values.SelectMany(l => l.TcpClusterNames)).ToHashSet(StringComparer.Ordinal));
            _accepted.Clear();
            foreach (var (type, set) in candidate)
            {
                _accepted[type] = set;
            }
            _versions[typeUrl] = versionInfo;
            _version++;
            if (typeUrl is TypeUrls.Listener or TypeUrls.Cluster)
            {
                var unused = _controlPlaneSecrets.Except(SecretDependencies()).ToList();
                secrets.Remove(unused);
                _controlPlaneSecrets.ExceptWith(unused);
            }
            Volatile.Write(ref _initialized, _versions.ContainsKey(TypeUrls.Listener) && _versions.ContainsKey(TypeUrls.Cluster) && listeners.AllWarm);
            LogApplied(logger, TypeUrls.ShortName(typeUrl), versionInfo, received.Count);
            return null;
        }
        catch (ProxyConfigException e)
        {
            Rollback();
            LogRejected(logger, TypeUrls.ShortName(typeUrl), versionInfo, e.Message);
            return e.Message;
        }
        catch (InvalidProtocolBufferException e)
        {
            Rollback();
            LogRejected(logger, TypeUrls.ShortName(typeUrl), versionInfo, e.Message);
            return $"{TypeUrls.ShortName(typeUrl)}: undecodable resource: {e.Message}";
        }
        catch (OperationCanceledException)
        {
            // A cancelled apply (shutdown, or a stalled stream reopened) must not leave its staged clusters and pools for the next one.
            Rollback();
            throw;
        }
        catch (Exception e)
        {
            // Config we failed to anticipate must still be a NACK, never a dead xDS loop.
            Rollback();
            LogRejected(logger, TypeUrls.ShortName(typeUrl), versionInfo, e.ToString());
            return $"{TypeUrls.ShortName(typeUrl)}: cannot apply: {e.GetType().Name}: {e.Message}";
        }
    }

    /// <summary>
    /// SDS: every secret of the response is compiled before any is stored, so one bad PEM NACKs the response and
    /// leaves the store as it was. Stored secrets are read by the next handshake of every chain that names them; no
    /// listener is recompiled and no connection is touched. A secret missing from a response is kept (SDS, like RDS
    /// and EDS, is not a wildcard type), until no listener or cluster names it.
    /// </summary>
    private string? ApplySecrets(IReadOnlyList<Any> resources, string versionInfo)
    {
        try
        {
            var compiled = new List<Tls.CompiledSecret>(resources.Count);
            foreach (var any in resources)
            {
                var (name, message) = Unpack(TypeUrls.Secret, any);
                if (compiled.Any(c => c.Name == name))
                {
                    throw new ProxyConfigException($"SDS response lists {name} twice");
                }
                compiled.Add(Tls.SdsSecrets.Compile((Envoy.Extensions.TransportSockets.Tls.V3.Secret)message));
            }
            secrets.Set(compiled);
            _controlPlaneSecrets.UnionWith(compiled.Select(c => c.Name));
            _versions[TypeUrls.Secret] = versionInfo;
            LogApplied(logger, "SDS", versionInfo, compiled.Count);
            return null;
        }
        catch (Exception e) when (e is ProxyConfigException or InvalidProtocolBufferException)
        {
            LogRejected(logger, "SDS", versionInfo, e.Message);
            return e is ProxyConfigException ? e.Message : $"SDS: undecodable resource: {e.Message}";
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A secret we failed to anticipate must still be a NACK, never a dead xDS loop.
            LogRejected(logger, "SDS", versionInfo, e.ToString());
            return $"SDS: cannot apply: {e.GetType().Name}: {e.Message}";
        }
    }

    /// <summary>The SDS secrets the current listeners and clusters fetch over ADS, so the client subscribes to exactly those.</summary>
    public IReadOnlySet<string> SecretDependencies() => Tls.SdsSecrets.Referenced(
        _accepted.TryGetValue(TypeUrls.Listener, out var listeners) ? listeners.Values.Select(r => (Listener)r.Resource) : [],
        _accepted.TryGetValue(TypeUrls.Cluster, out var clusters) ? clusters.Values.Select(r => (Cluster)r.Resource) : []);

    private void Rollback()
    {
        pools.Rollback();
        clusters.Rollback();
    }

    /// <summary>
    /// Envoy's warming for a listener already serving: while the routes its update names have not arrived, it keeps
    /// serving with its previous compiled form instead of answering 404.
    /// </summary>
    private static ProxySnapshot KeepWarmListeners(ProxySnapshot next, ProxySnapshot current)
    {
        var cold = next.Listeners.Values.Where(l => !l.IsWarm && current.Listeners.TryGetValue(l.Name, out var live) && live.IsWarm && live.AddressKey == l.AddressKey).ToList();
        if (cold.Count == 0)
        {
            return next;
        }
        var listeners = next.Listeners.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        foreach (var listener in cold)
        {
            listeners[listener.Name] = current.Listeners[listener.Name];
        }
        var tables = next.RouteTables.ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        foreach (var chain in cold.SelectMany(l => current.Listeners[l.Name].Chains))
        {
            if (chain.RouteConfigName is { } name && chain.Routes is { } routes)
            {
                tables.TryAdd(name, routes);
            }
        }
        return new ProxySnapshot(next.Version, listeners, next.ClusterManager, tables, next.Accepted, next.VersionInfo);
    }

    /// <summary>Drops route configurations and endpoints that no listener or cluster refers to any more.</summary>
    private static void PruneUnreferenced(Dictionary<string, IReadOnlyDictionary<string, AcceptedResource>> candidate)
    {
        var (routes, endpoints) = Dependencies(candidate);
        foreach (var (type, keep) in new[] { (TypeUrls.RouteConfiguration, routes), (TypeUrls.ClusterLoadAssignment, endpoints) })
        {
            if (candidate.TryGetValue(type, out var set) && set.Keys.Any(k => !keep.Contains(k)))
            {
                candidate[type] = set.Where(kv => keep.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
            }
        }
    }

    /// <summary>The RDS names the current listeners need and the EDS names the current clusters need, so the client subscribes to exactly those.</summary>
    public (IReadOnlySet<string> Routes, IReadOnlySet<string> Endpoints) Dependencies() => Dependencies(_accepted);

    private static (IReadOnlySet<string> Routes, IReadOnlySet<string> Endpoints) Dependencies(IReadOnlyDictionary<string, IReadOnlyDictionary<string, AcceptedResource>> accepted)
    {
        var routes = new HashSet<string>(StringComparer.Ordinal);
        var endpoints = new HashSet<string>(StringComparer.Ordinal);
        if (accepted.TryGetValue(TypeUrls.Listener, out var listeners))
        {
            routes.UnionWith(listeners.Values.SelectMany(r => ResourceReferences.RouteConfigNames((Listener)r.Resource)));
        }
        if (accepted.TryGetValue(TypeUrls.Cluster, out var clusters))
        {
            endpoints.UnionWith(clusters.Values.Select(r => ResourceReferences.EndpointsName((Cluster)r.Resource)).OfType<string>());
        }
        return (routes, endpoints);
    }

    private static (string Name, IMessage Message) Unpack(string typeUrl, Any any)
    {
        if (any.TypeUrl != typeUrl)
        {
            throw new ProxyConfigException($"a {TypeUrls.ShortName(typeUrl)} response carries a {any.TypeUrl}");
        }
        return typeUrl switch
        {
            TypeUrls.Listener => Named(any.Unpack<Listener>(), l => l.Name),
            TypeUrls.RouteConfiguration => Named(any.Unpack<RouteConfiguration>(), r => r.Name),
            TypeUrls.Cluster => Named(any.Unpack<Cluster>(), c => c.Name),
            TypeUrls.ClusterLoadAssignment => Named(any.Unpack<ClusterLoadAssignment>(), c => c.ClusterName),
            TypeUrls.Secret => Named(any.Unpack<Envoy.Extensions.TransportSockets.Tls.V3.Secret>(), s => s.Name),
            _ => throw new ProxyConfigException($"resource type {typeUrl} is not supported"),
        };
    }

    private static (string, IMessage) Named<T>(T message, Func<T, string> name) where T : IMessage
    {
        var value = name(message);
        return string.IsNullOrEmpty(value) ? throw new ProxyConfigException($"a {typeof(T).Name} has no name") : (value, message);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "xds: applied {Type} version {Version} ({Count} resources)")]
    private static partial void LogApplied(ILogger logger, string type, string version, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "xds: rejected {Type} version {Version}, keeping the last good config: {Reason}")]
    private static partial void LogRejected(ILogger logger, string type, string version, string reason);
}
