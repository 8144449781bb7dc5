namespace Bowline.ControlPlane.Security;

/// <summary>What the control plane has for one JWKS source.</summary>
/// <param name="Jwks">The last good JWKS document, verbatim as fetched; null when none was ever fetched (or the last good one expired).</param>
/// <param name="FetchedAt">When <paramref name="Jwks"/> was fetched.</param>
/// <param name="LastError">Why the latest attempt failed; null when it succeeded.</param>
internal sealed record JwksEntry(string? Jwks, DateTimeOffset? FetchedAt, string? LastError)
{
    /// <summary>The last good JWKS is served although refreshing it failed.</summary>
    public bool Stale => Jwks is not null && LastError is not null;
}

/// <summary>
/// Every fetched JWKS at one moment, by <see cref="JwksSource.Key"/>: immutable, carried by a config generation so that
/// translation reads keys without I/O and two proxies of one generation get the same keys.
/// </summary>
internal sealed class JwksSnapshot(IReadOnlyDictionary<string, JwksEntry> entries)
{
    public static readonly JwksSnapshot Empty = new(new Dictionary<string, JwksEntry>());

    public IReadOnlyDictionary<string, JwksEntry> Entries { get; } = entries;

    public JwksEntry? Find(string key) => Entries.GetValueOrDefault(key);

    /// <summary>Whether translation would inline different keys from the two snapshots: only the served JWKS counts, not errors or times.</summary>
    public bool ServesSameKeysAs(JwksSnapshot other) =>
        Entries.Count == other.Entries.Count && Entries.All(e => other.Entries.TryGetValue(e.Key, out var o) && o.Jwks == e.Value.Jwks);
}
