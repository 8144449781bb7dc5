namespace Bowline.Proxy.Tests.Infrastructure;

/// <summary>A <see cref="Random"/> that fails the test if it is used: proves a code path needs no randomness.</summary>
internal sealed class ThrowingRandom : Random
{
    public override int Next() => throw new InvalidOperationException("randomness was not expected here");

    public override int Next(int maxValue) => throw new InvalidOperationException("randomness was not expected here");

    public override int Next(int minValue, int maxValue) => throw new InvalidOperationException("randomness was not expected here");

    public override double NextDouble() => throw new InvalidOperationException("randomness was not expected here");
}
