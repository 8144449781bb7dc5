using System.Collections.Concurrent;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;

namespace Bowline.ControlPlane.Xds;

/// <summary>What the control plane knows of one connected stream: who, since when, and per type what was sent and acknowledged.</summary>
internal sealed class ConnectedProxy(ProxyNode node, string peer, DateTimeOffset connectedAt, string? verifiedIdentity = null)
{
    private readonly ConcurrentDictionary<string, TypeStatus> _types = new(StringComparer.Ordinal);

    /// <summary>The node as last classified; it changes at most once, when a defaulted node shows it is a gRPC client.</summary>
    public ProxyNode Node { get; private set; } = node;

    public string Peer { get; } = peer;

    public DateTimeOffset ConnectedAt { get; } = connectedAt;

    /// <summary>The SPIFFE ID its client certificate proved, on the TLS port; null on the plaintext port (nothing proved).</summary>
    public string? VerifiedIdentity { get; } = verifiedIdentity;

    /// <summary>Per type (LDS, RDS, CDS, EDS): the version sent, the version acknowledged, and the last rejection.</summary>
    public IReadOnlyDictionary<string, TypeStatus> Types => _types;

    /// <summary>The config generation this stream has translated and pushed; a change of a later generation has not reached it yet.</summary>
    public long Generation => Volatile.Read(ref _generation);

    private long _generation = -1;

    internal void Reclassify(ProxyNode node) => Node = node;

    internal void Processed(long generation) => Volatile.Write(ref _generation, generation);

    /// <summary>The newest generation this proxy has fully applied (every type and follow-up ACKed), -1 before the first.</summary>
    public long ConvergedGeneration => Volatile.Read(ref _convergedGeneration);

    private long _convergedGeneration = -1;

    internal void Converged(long generation) => Volatile.Write(ref _convergedGeneration, generation);

    /// <summary>The newest generation that could not be delivered (translation failed, a response was too large), and why.</summary>
    private UndeliveredChange? _failure;

    internal void Failed(long generation, string reason) => Volatile.Write(ref _failure, new UndeliveredChange(generation, reason));

    /// <summary>A later translation succeeded: what it sends supersedes the undelivered change.</summary>
    internal void Recovered() => Volatile.Write(ref _failure, null);

    private sealed record UndeliveredChange(long Generation, string Reason);

    internal void Update(string typeUrl, SubscriptionState state) =>
        _types[TypeUrls.ShortName(typeUrl)] = new TypeStatus(state.SentVersion, state.AckedVersion, state.RejectedVersion, state.RejectReason, state.SentGeneration, typeUrl)
        {
            Subscribed = state.Names,
            FollowUps = state.FollowUps,
        };

    /// <summary>
    /// Where the change of config generation <paramref name="generation"/> stands on this proxy: not translated yet
    /// (pending), not touching it (unaffected), every type it changed ACKed and the route configurations and load
    /// assignments those name subscribed and ACKed too (applied), one of them NACKed, not deliverable (failed:
    /// translation broke or a response was too large), or sent and not yet answered (pending).
    /// </summary>
    public (ChangeState State, string? Detail) StatusOf(long generation)
    {
        if (Generation < generation)
        {
            return (ChangeState.Pending, "not yet translated for this proxy");
        }
        if (Volatile.Read(ref _failure) is { } failure && failure.Generation >= generation)
        {
            return (ChangeState.Failed, failure.Reason);
        }
        var changed = _types.Where(t => t.Value.SentGeneration >= generation).ToList();
        if (changed.Count == 0)
        {
            return (ChangeState.Unaffected, null);
        }
        if (changed.FirstOrDefault(t => t.Value.Sent is not null && t.Value.Rejected == t.Value.Sent) is { Value: not null } nacked)
        {
            return (ChangeState.Nacked, $"{nacked.Key} {nacked.Value.Rejected}: {nacked.Value.RejectReason}");
        }
        // A follow-up the change relies on that the proxy rejected earlier and still holds rejected: the change cannot apply.
        foreach (var (type, status) in changed.Where(t => t.Value.Synced))
        {
            if (FollowUpOf(type) is { } followUp && status.FollowUps.Count > 0 && _types.TryGetValue(followUp, out var child) && child.Nacked)
            {
                return (ChangeState.Nacked, $"{followUp} {child.Rejected}: {child.RejectReason}");
            }
        }
        var waiting = changed.Where(t => !t.Value.Synced).Select(t => t.Key)
            .Concat(changed.Where(t => t.Value.Synced).SelectMany(t => WaitingFollowUp(t.Key, t.Value)))
            .Distinct().Order(StringComparer.Ordinal).ToList();
        return waiting.Count == 0 ? (ChangeState.Applied, null) : (ChangeState.Pending, $"waiting for the ACK of {string.Join(", ", waiting)}");
    }

    private static string? FollowUpOf(string type) => type switch { "LDS" => "RDS", "CDS" => "EDS", _ => null };

    /// <summary>
    /// The follow-up type an ACKed LDS or CDS still waits for: RDS (or EDS) not yet subscribed to every name the
    /// listeners (or clusters) refer to, or subscribed and not yet ACKed.
    /// </summary>
    private IEnumerable<string> WaitingFollowUp(string type, TypeStatus status)
    {
        var followUp = FollowUpOf(type);
        if (followUp is null || status.FollowUps.Count == 0)
        {
            yield break;
        }
        if (!_types.TryGetValue(followUp, out var child) || !child.Synced || (child.Subscribed is { } names && !status.FollowUps.IsSubsetOf(names)))
        {
            yield return followUp;
        }
    }
}

/// <summary>How far one config change has reached one proxy (<see cref="ConnectedProxy.StatusOf"/>).</summary>
internal enum ChangeState
{
    Pending,
    Unaffected,
    Applied,
    Nacked,

    /// <summary>The control plane could not deliver it to this proxy (see the detail and its log); the proxy keeps its last config.</summary>
    Failed,
}

/// <summary>
/// A type's sync state on one stream: <see cref="Synced"/> when the client acknowledged what it was sent; NACKED when it
/// rejected the version it was sent; STALE when the newest version is sent and not yet answered.
/// </summary>
internal sealed record TypeStatus(string? Sent, string? Acked, string? Rejected, string? RejectReason, long SentGeneration = -1, string TypeUrl = "")
{
    public bool Synced => Sent is not null && Sent == Acked;

    /// <summary>The names the client subscribed to; null for a wildcard subscription.</summary>
    public IReadOnlySet<string>? Subscribed { get; init; }

    /// <summary>The RDS or EDS names what was sent refers to (<see cref="SubscriptionState.FollowUps"/>).</summary>
    public IReadOnlySet<string> FollowUps { get; init; } = SubscriptionState.EmptyNames;

    public bool Nacked => Sent is not null && Rejected == Sent;

    /// <summary>istioctl proxy-status's words for it.</summary>
    public string Label => Sent is null ? "NOT SENT" : Synced ? "SYNCED" : Nacked ? "NACKED" : "STALE";
}

/// <summary>Every connected xDS stream. Thread-safe.</summary>
internal sealed class ConnectedProxies(TimeProvider time)
{
    private readonly ConcurrentDictionary<ConnectedProxy, byte> _all = new();

    public IReadOnlyList<ConnectedProxy> All => _all.Keys.OrderBy(p => p.Node.Id, StringComparer.Ordinal).ToList();

    internal ConnectedProxy Add(ProxyNode node, string peer, string? verifiedIdentity = null)
    {
        var proxy = new ConnectedProxy(node, peer, time.GetUtcNow(), verifiedIdentity);
        _all[proxy] = 0;
        return proxy;
    }

    internal void Remove(ConnectedProxy proxy) => _all.TryRemove(proxy, out _);
}
