using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;

namespace Bowline.ControlPlane.Snapshots;

/// <summary>
/// The current mesh (one immutable <see cref="ServiceIndex"/>), swapped atomically when config changes. Streams read
/// <see cref="Current"/> and await <see cref="WaitForChangeAsync"/>; nothing here blocks a reader.
/// </summary>
public sealed class MeshState
{
    private ServiceIndex _current = new(MeshConfig.Empty);
    private TaskCompletionSource _changed = NewSignal();

    public ServiceIndex Current => Volatile.Read(ref _current);

    /// <summary>Publishes a new mesh and wakes every waiter.</summary>
    public void Publish(MeshConfig config)
    {
        Interlocked.Exchange(ref _current, new ServiceIndex(config));
        Interlocked.Exchange(ref _changed, NewSignal()).TrySetResult();
    }

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
