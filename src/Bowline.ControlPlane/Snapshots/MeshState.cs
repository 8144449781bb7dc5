using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;

namespace Bowline.ControlPlane.Snapshots;

/// <summary>
/// The current mesh (one immutable <see cref="ServiceIndex"/>), swapped atomically when config changes. Streams read
/// <see cref="Current"/> and await <see cref="WaitForChangeAsync"/>; nothing here blocks a reader.
/// </summary>
internal sealed partial class MeshState(Microsoft.Extensions.Logging.ILogger<MeshState> logger, TimeProvider? time = null)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _warnings = new(StringComparer.Ordinal);
    private long _warningsGeneration;
    private ServiceIndex _current = new(MeshConfig.Empty);
    private TaskCompletionSource _changed = NewSignal();

    public ServiceIndex Current => Volatile.Read(ref _current);

    /// <summary>The clock generations are stamped with (<see cref="ServiceIndex.PublishedAt"/>), which convergence is measured on.</summary>
    public TimeProvider Time { get; } = time ?? TimeProvider.System;

    /// <summary>Publishes a new mesh and wakes every waiter.</summary>
    public void Publish(MeshConfig config)
    {
        Interlocked.Exchange(ref _current, new ServiceIndex(config) { PublishedAt = Time.GetTimestamp() });
        Interlocked.Exchange(ref _changed, NewSignal()).TrySetResult();
    }

    /// <summary>Problems translation worked around in the current generation (a route to an unknown host, ...), for <c>/debug/config</c>.</summary>
    public IReadOnlyCollection<string> Warnings => _warnings.Keys.Order(StringComparer.Ordinal).ToList();

    /// <summary>Records the warnings one proxy's translation produced; each is logged once per config generation, not once per proxy.</summary>
    public void ReportWarnings(long generation, IReadOnlyList<string> warnings)
    {
        if (Interlocked.Exchange(ref _warningsGeneration, generation) != generation)
        {
            _warnings.Clear();
        }
        foreach (var warning in warnings)
        {
            if (_warnings.TryAdd(warning, 0))
            {
                ControlPlaneMetrics.TranslationWarnings.Add(1);
                LogWarning(logger, generation, warning);
            }
        }
    }

    [Microsoft.Extensions.Logging.LoggerMessage(Level = Microsoft.Extensions.Logging.LogLevel.Warning, Message = "config: generation {Generation}: {Warning}")]
    private static partial void LogWarning(Microsoft.Extensions.Logging.ILogger logger, long generation, string warning);

    /// <summary>Completes when a generation newer than <paramref name="seenGeneration"/> is published.</summary>
    public async Task WaitForChangeAsync(long seenGeneration, CancellationToken cancellationToken)
    {
        while (true)
        {
            var signal = Volatile.Read(ref _changed);
            if (Current.Config.Generation != seenGeneration)
            {
                return;
            }
            await signal.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
