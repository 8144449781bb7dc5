namespace Bowline.Samples.GrpcEcho.Server;

/// <summary>
/// Calls a test keeps open on purpose, in named groups: a <c>hold:&lt;group&gt;</c> call waits until a
/// <c>release:&lt;group&gt;</c> call arrives (or <see cref="MaxHold"/> passes), so a client can have a known number of
/// calls in flight at once without racing a timer. A singleton, like <see cref="EchoServerState"/>; thread-safe.
/// </summary>
internal sealed class HeldCalls
{
    /// <summary>How long a held call waits for its release before it fails with ABORTED; only a broken test waits this long.</summary>
    public static readonly TimeSpan MaxHold = TimeSpan.FromSeconds(30);

    private readonly Lock _lock = new();
    private readonly Dictionary<string, Group> _groups = new(StringComparer.Ordinal);

    /// <summary>Waits until <paramref name="group"/> is released; false when <see cref="MaxHold"/> passed first.</summary>
    public async Task<bool> HoldAsync(string group, CancellationToken cancellationToken)
    {
        Group held;
        lock (_lock)
        {
            if (!_groups.TryGetValue(group, out held!))
            {
                held = new Group();
                _groups.Add(group, held);
            }
            held.Waiting++;
        }
        try
        {
            await held.Released.Task.WaitAsync(MaxHold, TimeProvider.System, cancellationToken);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
        finally
        {
            lock (_lock)
            {
                held.Waiting--;
            }
        }
    }

    /// <summary>
    /// Lets every call held in <paramref name="group"/> complete and returns how many were waiting. The group is
    /// forgotten, so a later <c>hold:</c> with the same name waits for a new release.
    /// </summary>
    public int Release(string group)
    {
        lock (_lock)
        {
            if (!_groups.Remove(group, out var held))
            {
                return 0;
            }
            held.Released.TrySetResult();
            return held.Waiting;
        }
    }

    private sealed class Group
    {
        public TaskCompletionSource Released { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Calls waiting on <see cref="Released"/>; guarded by the registry's lock.</summary>
        public int Waiting { get; set; }
    }
}
