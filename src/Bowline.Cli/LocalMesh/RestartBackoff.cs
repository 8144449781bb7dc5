namespace Bowline.Cli.LocalMesh;

/// <summary>
/// Delay before restarting a process that exited: 1 s, doubling up to 30 s, back to 1 s once a run lasted 60 s, so a
/// crash loop does not spin while a process that crashes once in a while comes back at once.
/// </summary>
/// <remarks>Not thread-safe: one per supervised process.</remarks>
internal sealed class RestartBackoff
{
    public static readonly TimeSpan Initial = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan Maximum = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan HealthyRun = TimeSpan.FromSeconds(60);

    private TimeSpan _next = Initial;

    /// <param name="ranFor">How long the process that just exited had been running.</param>
    public TimeSpan Next(TimeSpan ranFor)
    {
        if (ranFor >= HealthyRun)
        {
            _next = Initial;
        }
        var delay = _next;
        _next = TimeSpan.FromTicks(Math.Min(_next.Ticks * 2, Maximum.Ticks));
        return delay;
    }
}
