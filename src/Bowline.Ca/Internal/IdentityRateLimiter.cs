using System.Collections.Concurrent;

namespace Bowline.Ca.Internal;

/// <summary>
/// A token bucket per caller identity. Keyed by the authenticated identity, not the peer address, so one looping
/// workload cannot starve the others, and the table grows only with identities that proved themselves.
/// </summary>
internal sealed class IdentityRateLimiter(int burst, double perSecond, TimeProvider time)
{
    private readonly ConcurrentDictionary<WorkloadIdentity, Bucket> _buckets = new();

    /// <summary>
    /// Takes one token for <paramref name="identity"/>; when none is left, says how long until one is, and whether
    /// this is the first refusal since the identity was last served (so a looping caller is logged once, counted always).
    /// </summary>
    public bool TryAcquire(WorkloadIdentity identity, out TimeSpan retryAfter, out bool firstRefusal)
    {
        var bucket = _buckets.GetOrAdd(identity, static (_, state) => new Bucket(state.burst, state.time.GetTimestamp()), (burst, time));
        var now = time.GetTimestamp();
        lock (bucket)
        {
            var elapsed = time.GetElapsedTime(bucket.Stamp, now).TotalSeconds;
            bucket.Tokens = Math.Min(burst, bucket.Tokens + (Math.Max(0, elapsed) * perSecond));
            bucket.Stamp = now;
            if (bucket.Tokens >= 1)
            {
                bucket.Tokens -= 1;
                bucket.Limited = false;
                retryAfter = TimeSpan.Zero;
                firstRefusal = false;
                return true;
            }
            firstRefusal = !bucket.Limited;
            bucket.Limited = true;
            retryAfter = TimeSpan.FromSeconds(Math.Ceiling((1 - bucket.Tokens) / perSecond));
            return false;
        }
    }

    private sealed class Bucket(double tokens, long stamp)
    {
        public double Tokens { get; set; } = tokens;

        public long Stamp { get; set; } = stamp;

        public bool Limited { get; set; }
    }
}
