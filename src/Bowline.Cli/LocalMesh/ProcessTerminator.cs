using System.Runtime.InteropServices;

namespace Bowline.Cli.LocalMesh;

/// <summary>Stops children the polite way first (SIGTERM, so they drain and flush), then kills what is left.</summary>
internal static class ProcessTerminator
{
    private const int SigTerm = 15;

    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(5);

    /// <returns>How many processes had to be killed.</returns>
    public static async Task<int> StopAllAsync(IReadOnlyList<ChildProcess> processes, TimeProvider time)
    {
        var running = processes.Where(p => !p.HasExited).ToList();
        foreach (var process in running)
        {
            Terminate(process);
        }
        // One deadline for all of them together, so stopping twenty processes still takes at most the grace period.
        using (var grace = new CancellationTokenSource(Grace, time))
        {
            await WaitAllAsync(running, grace.Token).ConfigureAwait(false);
        }
        var stragglers = running.Where(p => !p.HasExited).ToList();
        foreach (var process in stragglers)
        {
            process.Kill();
        }
        using (var reap = new CancellationTokenSource(TimeSpan.FromSeconds(2), time))
        {
            await WaitAllAsync(stragglers, reap.Token).ConfigureAwait(false);
        }
        return stragglers.Count;
    }

    private static void Terminate(ChildProcess process)
    {
        if (OperatingSystem.IsWindows())
        {
            // No SIGTERM on Windows; the graceful path there is a later concern.
            process.Kill();
            return;
        }
        _ = Kill(process.Id, SigTerm);
    }

    private static async Task WaitAllAsync(IEnumerable<ChildProcess> processes, CancellationToken cancellationToken)
    {
        try
        {
            await Task.WhenAll(processes.Select(p => p.WaitForExitAsync(cancellationToken))).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The deadline passed; the caller looks at who is still running.
        }
    }

    // DllImport rather than LibraryImport: the generated marshalling code needs AllowUnsafeBlocks, and an
    // (int, int) -> int signature is blittable, so there is nothing for the generator to do.
#pragma warning disable SYSLIB1054
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
#pragma warning restore SYSLIB1054
}
