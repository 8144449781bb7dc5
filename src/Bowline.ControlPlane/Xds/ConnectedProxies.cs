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

    internal void Reclassify(ProxyNode node) => Node = node;

    internal void Update(string typeUrl, SubscriptionState state) =>
        _types[TypeUrls.ShortName(typeUrl)] = new TypeStatus(state.SentVersion, state.AckedVersion, state.RejectedVersion, state.RejectReason);
}

/// <summary>A type's sync state on one stream; <see cref="Synced"/> when the client acknowledged what it was sent.</summary>
internal sealed record TypeStatus(string? Sent, string? Acked, string? Rejected, string? RejectReason)
{
    public bool Synced => Sent is not null && Sent == Acked;
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
