namespace Bowline.EndToEnd.Tests.Infrastructure;

/// <summary>
/// A seeded <see cref="Random"/> that is safe to share between request threads (the proxy requires that), so a
/// statistical end-to-end assertion sees the same sequence of rolls whenever requests are sent one at a time.
/// </summary>
internal sealed class SeededRandom(int seed) : Random(seed)
{
    private readonly Lock _lock = new();

    public override int Next()
    {
        lock (_lock)
        {
            return base.Next();
        }
    }

    public override int Next(int maxValue)
    {
        lock (_lock)
        {
            return base.Next(maxValue);
        }
    }

    public override int Next(int minValue, int maxValue)
    {
        lock (_lock)
        {
            return base.Next(minValue, maxValue);
        }
    }

    public override long NextInt64(long maxValue)
    {
        lock (_lock)
        {
            return base.NextInt64(maxValue);
        }
    }

    public override long NextInt64()
    {
        lock (_lock)
        {
            return base.NextInt64();
        }
    }

    public override double NextDouble()
    {
        lock (_lock)
        {
            return base.NextDouble();
        }
    }
}
