namespace Bowline.Proxy.Filters.Http.LocalRateLimit;

/// <summary>
/// Envoy's local rate-limit token bucket: starts full with <c>max_tokens</c>, gains <c>tokens_per_fill</c> every
/// <c>fill_interval</c>, never above the maximum. Refills are computed lazily from the clock on each take, so there is
/// no timer; thread-safe with one lock-free compare-and-swap loop.
/// </summary>
internal sealed class TokenBucket(int maxTokens, int tokensPerFill, TimeSpan fillInterval, TimeProvider time)
{
    private readonly long _intervalTicks = Math.Max(1, (long)(fillInterval.TotalSeconds * time.TimestampFrequency));
    // Packed state: tokens and the timestamp of the last fill, swapped together.
    private State _state = new(maxTokens, time.GetTimestamp());

    public int MaxTokens => maxTokens;

    public TimeSpan FillInterval => fillInterval;

    /// <summary>Takes one token; returns whether it was there, and the tokens left and seconds to the next fill for the x-ratelimit headers.</summary>
    public (bool Allowed, int Remaining, int ResetSeconds) TryTake()
    {
        while (true)
        {
            var current = Volatile.Read(ref _state);
            var now = time.GetTimestamp();
            var fills = (now - current.LastFill) / _intervalTicks;
            var tokens = fills > 0 ? (int)Math.Min(maxTokens, current.Tokens + fills * tokensPerFill) : current.Tokens;
            var lastFill = fills > 0 ? current.LastFill + fills * _intervalTicks : current.LastFill;
            var reset = (int)Math.Ceiling((lastFill + _intervalTicks - now) / (double)time.TimestampFrequency);
            if (tokens == 0)
            {
                if (fills > 0)
                {
                    Interlocked.CompareExchange(ref _state, new State(0, lastFill), current);
                }
                return (false, 0, reset);
            }
            if (Interlocked.CompareExchange(ref _state, new State(tokens - 1, lastFill), current) == current)
            {
                return (true, tokens - 1, reset);
            }
        }
    }

    private sealed record State(int Tokens, long LastFill);
}
