namespace Bowline.EndToEnd.Tests.Infrastructure;

/// <summary>Every await in these tests is bounded, so a hang fails fast with a message instead of stalling the suite.</summary>
internal static class Timeouts
{
    public static readonly TimeSpan Short = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    public static Task<T> Within<T>(this Task<T> task, TimeSpan timeout) => task.WaitAsync(timeout);

    public static Task Within(this Task task, TimeSpan timeout) => task.WaitAsync(timeout);

    public static CancellationToken Token(TimeSpan timeout) => new CancellationTokenSource(timeout).Token;
}
