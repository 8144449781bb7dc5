namespace Bowline.Proxy.Tests.Infrastructure;

/// <summary>Every await in these tests is bounded, so a hang fails fast with a message instead of stalling the suite.</summary>
internal static class Timeouts
{
    /// <summary>Generous for loopback work on a loaded two-core CI machine; a passing test never waits this long.</summary>
    public static readonly TimeSpan Default = TimeSpan.FromSeconds(10);

    public static CancellationToken Token() => new CancellationTokenSource(Default).Token;
}
