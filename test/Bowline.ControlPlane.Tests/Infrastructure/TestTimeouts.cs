namespace Bowline.ControlPlane.Tests.Infrastructure;

/// <summary>Every await in these tests is bounded (<c>.WaitAsync(TestTimeouts.Default)</c>), so a hang fails fast instead of stalling the suite.</summary>
internal static class TestTimeouts
{
    public static readonly TimeSpan Default = TimeSpan.FromSeconds(10);

    /// <summary>A token that cancels after <see cref="Default"/>, for APIs that take one.</summary>
    public static CancellationToken Token() => new CancellationTokenSource(Default).Token;
}
