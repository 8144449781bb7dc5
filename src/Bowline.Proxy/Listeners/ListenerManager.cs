using Bowline.Proxy.Configuration;

using Microsoft.Extensions.Logging;

namespace Bowline.Proxy.Listeners;

/// <summary>
/// Keeps the running sockets in line with the snapshot's listeners: opens new ones (a bind failure rejects the update),
/// leaves unchanged ones alone, drains removed ones. Called only from the xDS loop.
/// </summary>
internal sealed partial class ListenerManager(Http.HttpConnectionManager handler, IServiceProvider services, ILoggerFactory loggers, ProxyOptions options, TimeProvider time) : IAsyncDisposable
{
    private readonly Dictionary<string, ListenerServer> _running = new(StringComparer.Ordinal);
    private readonly ILogger _logger = loggers.CreateLogger<ListenerManager>();
    private readonly List<Task> _draining = [];

    public IReadOnlyCollection<string> Running => _running.Keys;

    /// <summary>Every listener of the current snapshot is open (none is warming).</summary>
    public bool AllWarm { get; private set; }

    /// <summary>Opens the listeners <paramref name="next"/> adds or rebinds; throws <see cref="ProxyConfigException"/> (having closed what it opened) if one cannot bind.</summary>
    public async Task<Action> PrepareAsync(ProxySnapshot next, CancellationToken cancellationToken)
    {
        var started = new List<ListenerServer>();
        foreach (var listener in next.Listeners.Values)
        {
            if ((_running.TryGetValue(listener.Name, out var existing) && existing.Listener.AddressKey == listener.AddressKey) || !listener.IsWarm)
            {
                continue;
            }
            var server = new ListenerServer(listener, handler, services, loggers);
            try
            {
                await server.StartAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or InvalidOperationException)
            {
                await server.DisposeAsync().ConfigureAwait(false);
                foreach (var opened in started)
                {
                    await opened.StopAsync(CancellationToken.None).ConfigureAwait(false);
                    await opened.DisposeAsync().ConfigureAwait(false);
                }
                throw new ProxyConfigException($"listener {listener.Name}: cannot bind {string.Join(", ", listener.Addresses)}: {e.Message}");
            }
            started.Add(server);
        }

        // Committed only after the snapshot is swapped in: replaced and removed listeners drain in the background.
        return () =>
        {
            foreach (var server in started)
            {
                if (_running.Remove(server.Listener.Name, out var replaced))
                {
                    Drain(replaced);
                }
                _running[server.Listener.Name] = server;
                LogOpened(_logger, server.Listener.Name, string.Join(", ", server.Listener.Addresses));
            }
            foreach (var name in _running.Keys.Where(n => !next.Listeners.ContainsKey(n)).ToList())
            {
                _running.Remove(name, out var removed);
                Drain(removed!);
            }
            foreach (var (name, server) in _running)
            {
                server.Listener = next.Listeners[name];
            }
            AllWarm = next.Listeners.Values.All(l => _running.ContainsKey(l.Name));
        };
    }

    private void Drain(ListenerServer server)
    {
        LogDraining(_logger, server.Listener.Name, options.DrainTimeout.TotalSeconds);
        _draining.RemoveAll(t => t.IsCompleted);
        _draining.Add(StopAsync(server));
    }

    private async Task StopAsync(ListenerServer server)
    {
        using var drain = new CancellationTokenSource(options.DrainTimeout, time);
        await server.StopAsync(drain.Token).ConfigureAwait(false);
        await server.DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var server in _running.Values)
        {
            _draining.Add(StopAsync(server));
        }
        _running.Clear();
        await Task.WhenAll(_draining).ConfigureAwait(false);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "listener {Listener} open on {Addresses}")]
    private static partial void LogOpened(ILogger logger, string listener, string addresses);

    [LoggerMessage(Level = LogLevel.Information, Message = "listener {Listener} removed; draining for up to {Seconds}s")]
    private static partial void LogDraining(ILogger logger, string listener, double seconds);
}
