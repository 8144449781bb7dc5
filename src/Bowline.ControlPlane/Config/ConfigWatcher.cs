using Bowline.ControlPlane.Snapshots;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Bowline.ControlPlane.Config;

/// <summary>
/// The control plane's config loop: waits for file changes, lets a burst settle (the debounce), reloads and publishes
/// the new mesh. The only writer of <see cref="MeshState"/>.
/// </summary>
internal sealed partial class ConfigWatcher(DirectoryConfigSource source, MeshState state, ControlPlaneOptions options, TimeProvider time, ILogger<ConfigWatcher> logger)
    : BackgroundService
{
    private readonly SemaphoreSlim _dirty = new(0);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        source.Changed += OnChanged;
        source.StartWatching();
        Apply();
        while (!stoppingToken.IsCancellationRequested)
        {
            await _dirty.WaitAsync(stoppingToken).ConfigureAwait(false);
            // Debounce: keep absorbing events until the directory has been quiet for the debounce interval.
            while (await _dirty.WaitAsync(options.Debounce, time, stoppingToken).ConfigureAwait(false))
            {
            }
            Apply();
        }
    }

    /// <summary>How translation treats mTLS: the options' switch and the CA's trust domain (Istio's default when no CA is configured).</summary>
    private MeshSecurity Security => new(options.MeshMtls, options.Ca?.TrustDomain ?? MeshSecurity.DefaultTrustDomain, options.PathNormalization);

    private void OnChanged()
    {
        if (_dirty.CurrentCount == 0)
        {
            _dirty.Release();
        }
    }

    private void Apply()
    {
        try
        {
            if (source.Reload() is { } config)
            {
                var secured = config.WithSecurity(Security);
                state.Publish(secured);
                // Logged now, not only when a proxy's translation reports them: a STRICT policy that is not enforced must be heard of.
                state.ReportWarnings(secured.Generation, secured.PeerAuthentication.Warnings);
                ControlPlaneMetrics.ConfigGenerations.Add(1);
            }
        }
        catch (Exception e)
        {
            // Whatever went wrong, the control plane must keep serving the last good config.
            LogReloadFailed(logger, e.ToString());
        }
        ControlPlaneMetrics.SetConfigErrors(source.Diagnostics.Count(d => d.Severity == DiagnosticSeverity.Error));
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "config: reload failed, the last good config keeps serving: {Reason}")]
    private static partial void LogReloadFailed(ILogger logger, string reason);
}

internal static class SemaphoreExtensions
{
    /// <summary>Waits up to <paramref name="timeout"/> on the injected clock; false when it elapsed.</summary>
    public static async Task<bool> WaitAsync(this SemaphoreSlim semaphore, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        using var timeoutCts = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutCts.Token);
        try
        {
            await semaphore.WaitAsync(linked.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }
}
