using Bowline.ControlPlane.Security;
using Bowline.ControlPlane.Snapshots;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Bowline.ControlPlane.Config;

/// <summary>
/// The control plane's config loop: waits for file changes, lets a burst settle (the debounce), reloads and publishes
/// the new mesh. The only writer of <see cref="MeshState"/>.
/// </summary>
/// <remarks>
/// It also publishes the JWKS the <see cref="JwksResolver"/> fetched for RequestAuthentication: a reload waits for the
/// keys of new rules (each fetch bounded by its rule's timeout), and a background refresh that changes keys publishes
/// the same resources as a new generation, which pushes every proxy.
/// </remarks>
internal sealed partial class ConfigWatcher(DirectoryConfigSource source, MeshState state, ControlPlaneOptions options, TimeProvider time, JwksResolver jwks, ILogger<ConfigWatcher> logger)
    : BackgroundService
{
    private readonly SemaphoreSlim _dirty = new(0);
    private MeshConfig? _published;
    private int _keysChanged;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        source.Changed += OnChanged;
        jwks.Changed += OnKeysChanged;
        source.StartWatching();
        await ApplyAsync(stoppingToken).ConfigureAwait(false);
        while (!stoppingToken.IsCancellationRequested)
        {
            await _dirty.WaitAsync(stoppingToken).ConfigureAwait(false);
            // Debounce: keep absorbing events until the directory has been quiet for the debounce interval.
            while (await _dirty.WaitAsync(options.Debounce, time, stoppingToken).ConfigureAwait(false))
            {
            }
            await ApplyAsync(stoppingToken).ConfigureAwait(false);
        }
    }

    private void OnKeysChanged()
    {
        Interlocked.Exchange(ref _keysChanged, 1);
        OnChanged();
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

    private async Task ApplyAsync(CancellationToken cancellationToken)
    {
        try
        {
            var keysChanged = Interlocked.Exchange(ref _keysChanged, 0) == 1;
            var reloaded = source.Reload();
            if ((reloaded ?? (keysChanged ? _published : null)) is { } config)
            {
                var secured = config.WithSecurity(Security).WithTelemetry(options.Telemetry);
                await jwks.UseAsync(secured.RequestAuthentication.JwksSources, cancellationToken).ConfigureAwait(false);
                secured = secured.WithJwks(jwks.Current, reloaded is null ? source.NextGeneration() : secured.Generation);
                foreach (var trigger in PushTrigger.Between(_published, secured, keysChanged))
                {
                    ControlPlaneMetrics.Triggered(trigger);
                }
                state.Publish(secured);
                _published = secured;
                // Logged now, not only when a proxy's translation reports them: a STRICT policy that is not enforced must be heard of.
                state.ReportWarnings(secured.Generation, secured.PeerAuthentication.Warnings);
                ControlPlaneMetrics.ConfigGenerations.Add(1);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
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
