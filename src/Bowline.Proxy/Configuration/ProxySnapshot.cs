using Bowline.Proxy.Clusters;
using Google.Protobuf;

namespace Bowline.Proxy.Configuration;

/// <summary>One accepted xDS resource as received, for <c>/config_dump</c>.</summary>
internal sealed record AcceptedResource(string Name, IMessage Resource, string VersionInfo, DateTimeOffset LastUpdated);

/// <summary>
/// Everything the proxy runs on, compiled from the accepted xDS resources: listeners with their route tables, clusters
/// with endpoints and pools. Immutable; swapped atomically; a request reads exactly one.
/// </summary>
internal sealed class ProxySnapshot(
    long version,
    IReadOnlyDictionary<string, CompiledListener> listeners,
    IReadOnlyDictionary<string, UpstreamCluster> clusters,
    IReadOnlyDictionary<string, IReadOnlyDictionary<string, AcceptedResource>> accepted,
    IReadOnlyDictionary<string, string> versionInfo)
{
    public static readonly ProxySnapshot Empty = new(0, new Dictionary<string, CompiledListener>(), new Dictionary<string, UpstreamCluster>(),
        new Dictionary<string, IReadOnlyDictionary<string, AcceptedResource>>(), new Dictionary<string, string>());

    /// <summary>Increases with each applied update.</summary>
    public long Version { get; } = version;

    public IReadOnlyDictionary<string, CompiledListener> Listeners { get; } = listeners;

    public IReadOnlyDictionary<string, UpstreamCluster> Clusters { get; } = clusters;

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
