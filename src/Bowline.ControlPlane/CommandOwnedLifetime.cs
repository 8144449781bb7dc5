using Microsoft.Extensions.Hosting;

namespace Bowline.ControlPlane;

/// <summary>
/// A host lifetime that leaves SIGINT and SIGTERM to the command that runs the host: ASP.NET's console lifetime would
/// swallow the signal and stop only its own app, leaving the process alive.
/// </summary>
internal sealed class CommandOwnedLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
