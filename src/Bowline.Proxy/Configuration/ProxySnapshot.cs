using Bowline.Proxy.Clusters;
using Bowline.Proxy.Routing;
using Google.Protobuf;

namespace Bowline.Proxy.Configuration;

/// <summary>One accepted xDS resource as received, for <c>/config_dump</c>.</summary>
internal sealed record AcceptedResource(string Name, IMessage Resource, string VersionInfo, DateTimeOffset LastUpdated);

/// <summary>
/// Everything the proxy's listeners run on, compiled from the accepted xDS resources: listeners with their route
/// tables, whose routes hold stable cluster handles (the clusters' own config and hosts live in the handles, so an
/// EDS update needs no new snapshot of listeners). Immutable; swapped atomically; a request reads exactly one.
/// </summary>
internal sealed class ProxySnapshot(
    long version,
    IReadOnlyDictionary<string, CompiledListener> listeners,
    ClusterManager? clusters,
    IReadOnlyDictionary<string, RouteTable> routeTables,
    IReadOnlyDictionary<string, IReadOnlyDictionary<string, AcceptedResource>> accepted,
    IReadOnlyDictionary<string, string> versionInfo)
{
    public static readonly ProxySnapshot Empty = new(0, new Dictionary<string, CompiledListener>(), null, new Dictionary<string, RouteTable>(),
        new Dictionary<string, IReadOnlyDictionary<string, AcceptedResource>>(), new Dictionary<string, string>());

    /// <summary>Increases with each applied update.</summary>
    public long Version { get; } = version;

    public IReadOnlyDictionary<string, CompiledListener> Listeners { get; } = listeners;

    public ClusterManager? ClusterManager { get; } = clusters;

    /// <summary>The live clusters by name (read at the time of the call: handles change as updates commit).</summary>
    public IReadOnlyDictionary<string, ClusterState> Clusters => ClusterManager?.Live.ToDictionary(c => c.Name, StringComparer.Ordinal) ?? new Dictionary<string, ClusterState>();

    /// <summary>The RDS route tables the listeners use, by name, for reuse by the next update.</summary>
    public IReadOnlyDictionary<string, RouteTable> RouteTables { get; } = routeTables;

    /// <summary>By type URL, the resources as accepted.</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, AcceptedResource>> Accepted { get; } = accepted;

    /// <summary>By type URL, the version_info last accepted.</summary>
    public IReadOnlyDictionary<string, string> VersionInfo { get; } = versionInfo;
}

/// <summary>Holds the current snapshot. One writer (the xDS loop), many readers (requests); readers never lock.</summary>
internal sealed class SnapshotHolder
{
    private ProxySnapshot _current = ProxySnapshot.Empty;
    private TaskCompletionSource _swapped = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ProxySnapshot Current => Volatile.Read(ref _current);

    public void Swap(ProxySnapshot next)
    {
        Interlocked.Exchange(ref _current, next);
        Interlocked.Exchange(ref _swapped, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    /// <summary>Completes when the current snapshot satisfies <paramref name="condition"/> (checked now and after every swap).</summary>
    public async Task WaitUntilAsync(Func<ProxySnapshot, bool> condition, CancellationToken cancellationToken)
    {
        while (true)
        {
            var swapped = Volatile.Read(ref _swapped).Task;
            if (condition(Current))
            {
                return;
            }
            await swapped.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
