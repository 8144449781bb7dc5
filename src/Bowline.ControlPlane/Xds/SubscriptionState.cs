namespace Bowline.ControlPlane.Xds;

/// <summary>
/// One resource type on one ADS stream (state of the world): what the client subscribed to, what was last sent, and
/// what it last accepted or rejected. Owned by its stream's loop; not thread-safe.
/// </summary>
internal sealed class SubscriptionState(string typeUrl)
{
    public string TypeUrl { get; } = typeUrl;

    /// <summary>Null for a wildcard subscription (all resources of the type).</summary>
    public IReadOnlySet<string>? Names { get; private set; }

    public string? SentVersion { get; set; }

    /// <summary>The config generation whose snapshot first had <see cref="SentVersion"/>: when this type last changed for the client.</summary>
    public long SentGeneration { get; set; } = -1;

    /// <summary>When that generation was published, for the convergence time its ACK ends.</summary>
    public long SentGenerationPublishedAt { get; set; }

    /// <summary>The resources of the last response, so a removal can be delayed until nothing refers to them.</summary>
    public IReadOnlyList<Snapshots.NamedResource> SentResources { get; set; } = [];

    /// <summary>
    /// What the last response obliges the client to subscribe to next: the RDS route configurations its listeners
    /// name, or the EDS load assignments its clusters are fed by. Until those are subscribed and ACKed too, a change
    /// that added them has not reached the client (Envoy asks for them only after it applied the listeners or clusters).
    /// </summary>
    public IReadOnlySet<string> FollowUps { get; set; } = EmptyNames;

    internal static readonly IReadOnlySet<string> EmptyNames = new HashSet<string>(StringComparer.Ordinal);

    public string? SentNonce { get; set; }

    public string? AckedVersion { get; set; }

    /// <summary>The last version the client NACKed, and why; cleared when it ACKs.</summary>
    public string? RejectedVersion { get; set; }

    public string? RejectReason { get; set; }

    /// <summary>Applies a request's resource names; true when the subscription changed.</summary>
    public bool Subscribe(IReadOnlyCollection<string> names, bool isFirst)
    {
        // "*", or an empty list on the first LDS or CDS request, is a wildcard subscription; RDS and EDS always name resources.
        IReadOnlySet<string>? next = names.Contains("*") || (names.Count == 0 && Bowline.Xds.TypeUrls.IsWildcardType(TypeUrl) && (isFirst || Names is null))
            ? null
            : names.ToHashSet(StringComparer.Ordinal);
        var changed = isFirst || !SameNames(Names, next);
        Names = next;
        return changed;
    }

    private static bool SameNames(IReadOnlySet<string>? a, IReadOnlySet<string>? b) =>
        a is null ? b is null : b is not null && a.SetEquals(b);
}
