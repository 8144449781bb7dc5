namespace Bowline.Ca.Internal;

/// <summary>
/// Which identities hold unexpired leaves under which root, so an operator can tell when retiring an old root will
/// break no one. In memory only: after a restart it knows nothing of leaves issued before it (documented).
/// </summary>
internal sealed class LeafLedger
{
    private readonly Lock _gate = new();
    // identity -> root thumbprint -> the latest notAfter of a leaf issued to it under that root.
    private readonly Dictionary<WorkloadIdentity, Dictionary<string, DateTimeOffset>> _leaves = [];
    // root thumbprint -> the latest time a holder of a leaf under it has renewed: agents renew at half a leaf's life;
    // a tenth more leaves room for a renewal that had to be retried.
    private readonly Dictionary<string, DateTimeOffset> _renewals = new(StringComparer.OrdinalIgnoreCase);

    public void Record(WorkloadIdentity identity, string rootThumbprint, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        lock (_gate)
        {
            if (!_leaves.TryGetValue(identity, out var roots))
            {
                _leaves[identity] = roots = new(StringComparer.OrdinalIgnoreCase);
            }
            if (!roots.TryGetValue(rootThumbprint, out var latest) || notAfter > latest)
            {
                roots[rootThumbprint] = notAfter;
            }
            // Half the certificate's validity, as the agents count it (from notBefore, which the CA backdates).
            var renewal = notBefore + ((notAfter - notBefore) * 0.6);
            if (!_renewals.TryGetValue(rootThumbprint, out var last) || renewal > last)
            {
                _renewals[rootThumbprint] = renewal;
            }
        }
    }

    /// <summary>
    /// When every leaf issued so far (under <paramref name="rootThumbprint"/>, or any root) is past its renewal: by
    /// then each live holder has renewed, and learnt whatever the CA answered since. Null when none was issued.
    /// </summary>
    public DateTimeOffset? AllRenewedBy(string? rootThumbprint = null)
    {
        lock (_gate)
        {
            if (rootThumbprint is not null)
            {
                return _renewals.TryGetValue(rootThumbprint, out var at) ? at : null;
            }
            return _renewals.Count == 0 ? null : _renewals.Values.Max();
        }
    }

    /// <summary>Identities with a leaf under <paramref name="rootThumbprint"/> that has not expired at <paramref name="now"/>, sorted.</summary>
    public IReadOnlyList<WorkloadIdentity> Holders(string rootThumbprint, DateTimeOffset now)
    {
        lock (_gate)
        {
            return _leaves
                .Where(e => e.Value.TryGetValue(rootThumbprint, out var notAfter) && notAfter > now)
                .Select(e => e.Key)
                .OrderBy(i => i.Namespace, StringComparer.Ordinal).ThenBy(i => i.ServiceAccount, StringComparer.Ordinal)
                .ToList();
        }
    }

    /// <summary>Forgets a retired root's leaves.</summary>
    public void Forget(string rootThumbprint)
    {
        lock (_gate)
        {
            _renewals.Remove(rootThumbprint);
            foreach (var (identity, roots) in _leaves.ToList())
            {
                if (roots.Remove(rootThumbprint) && roots.Count == 0)
                {
                    _leaves.Remove(identity);
                }
            }
        }
    }
}
