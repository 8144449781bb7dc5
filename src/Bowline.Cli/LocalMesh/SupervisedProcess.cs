namespace Bowline.Cli.LocalMesh;

/// <summary>
/// Keeps one child running while <c>up</c> runs: when it exits it is reported on the console and started again from the
/// same <see cref="LaunchSpec"/> after a <see cref="RestartBackoff"/> delay.
/// </summary>
/// <remarks>
/// Thread-safety: <see cref="Current"/> and <see cref="Restarts"/> are written by the supervision loop and read by
/// status writers; a reader sees either the old or the new child. After <c>stopping</c> is cancelled and
/// <see cref="Completion"/> has finished, no new child is started, so the owner can stop <see cref="Current"/> safely.
/// </remarks>
internal sealed class SupervisedProcess(string name, Func<LaunchSpec> launch, SupervisorContext context, Action<string>? onLine = null)
{
    // Ctrl-C in a terminal reaches the whole process group, children included; wait this long before calling an
    // exit a crash, so a stop that is already under way is not reported as one.
    private static readonly TimeSpan StopGrace = TimeSpan.FromMilliseconds(250);

    private volatile ChildProcess? _current;
    private long _startedAt;
    private int _restarts;

    /// <summary>What the console calls it: <c>reviews-v2 app</c>, <c>control plane</c>.</summary>
    public string Name => name;

    public ChildProcess? Current => _current;

    public int Restarts => Volatile.Read(ref _restarts);

    public bool IsRunning => _current is { HasExited: false };

    public Task Completion { get; private set; } = Task.CompletedTask;

    /// <summary>Starts the first child (a failure throws to the caller) and supervises it until <paramref name="stopping"/>.</summary>
    public void Start(CancellationToken stopping)
    {
        Launch();
        Completion = SuperviseAsync(stopping);
    }

    private void Launch()
    {
        _startedAt = context.Time.GetTimestamp();
        _current = ChildProcess.Start(launch(), context.Time, onLine);
        context.Changed();
    }

    private async Task SuperviseAsync(CancellationToken stopping)
    {
        var backoff = new RestartBackoff();
        while (true)
        {
            var child = _current;
            try
            {
                if (child is not null)
                {
                    await child.WaitForExitAsync(stopping).ConfigureAwait(false);
                }
                await Task.Delay(StopGrace, context.Time, stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            var why = child is null ? "could not be started" : $"exited with code {child.ExitCode}";
            context.Changed();
            var delay = backoff.Next(context.Time.GetElapsedTime(_startedAt));
            await context.Console.WriteLineAsync($"{name} {why}; restarting in {delay.TotalSeconds:0.#}s").ConfigureAwait(false);
            try
            {
                await Task.Delay(delay, context.Time, stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            Interlocked.Increment(ref _restarts);
            try
            {
                Launch();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Whatever kept it from starting, supervision goes on (and `up` can still stop everything cleanly).
                _current = null;
                _startedAt = context.Time.GetTimestamp();
                await context.Console.WriteLineAsync($"{name}: {e.Message}").ConfigureAwait(false);
            }
            child?.Dispose();
        }
    }
}
