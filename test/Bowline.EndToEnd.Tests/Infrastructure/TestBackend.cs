using System.Net;
using System.Net.WebSockets;
using Bowline.Proxy.Listeners;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Bowline.EndToEnd.Tests.Infrastructure;

/// <summary>
/// An app behind a sidecar: a real Kestrel server on loopback (HTTP/1.1 and h2c) that says who it is and what it
/// received, and offers the misbehaviours the error tests need (slow, reset, upload sink, WebSocket echo).
/// </summary>
internal sealed class TestBackend : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestBackend(WebApplication app, string name)
    {
        _app = app;
        Name = name;
    }

    public string Name { get; }

    /// <summary>Every request this backend received: its authority and path, in arrival order.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<(string Host, string Path)> Received { get; } = new();

    /// <summary>The name of every request header the backend was sent.</summary>
    public System.Collections.Concurrent.ConcurrentBag<string> Headers { get; } = [];

    private int _flakyCounter;
    private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _atGate;
    private int _maxAtGate;

    /// <summary>The most requests that waited on <c>/gate</c> at the same time: how many the sidecar in front let through at once.</summary>
    public int MaxConcurrentAtGate => Volatile.Read(ref _maxAtGate);

    /// <summary>Releases every request waiting on <c>/gate</c>; later ones pass at once.</summary>
    public void OpenGate() => _gate.TrySetResult();
    private TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when <paramref name="condition"/> holds for what was received, checked after every arrival.</summary>
    public async Task WaitUntilReceivedAsync(Func<IReadOnlyCollection<(string Host, string Path)>, bool> condition, TimeSpan bound)
    {
        using var timeout = new CancellationTokenSource(bound);
        while (true)
        {
            var arrived = Volatile.Read(ref _arrived).Task;
            if (condition(Received))
            {
                return;
            }
            await arrived.WaitAsync(timeout.Token);
        }
    }

    public int Port { get; private set; }

    /// <summary>
    /// Paths this backend answers with a test's own handler instead (an app that calls the next hop through its
    /// sidecar, set once that sidecar runs). Such requests are recorded in <see cref="Received"/> like every other.
    /// </summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, RequestDelegate> Handlers { get; } = new(StringComparer.Ordinal);

    public static async Task<TestBackend> StartAsync(string name)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = null;
            k.AllowAlternateSchemes = true;
            k.Listen(IPAddress.Loopback, 0, l =>
            {
                l.Protocols = HttpProtocols.Http1AndHttp2;
                l.Use(Http2PriorKnowledge.Middleware);
            });
        });
        var app = builder.Build();
        app.UseWebSockets();
        var backend = new TestBackend(app, name);
        app.Run(context => backend.HandleAsync(context));
        await app.StartAsync().Within(Timeouts.Short);
        backend.Port = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;
        return backend;
    }

    private async Task HandleAsync(HttpContext context)
    {
        var name = Name;
        var path = context.Request.Path.Value ?? "/";
        Received.Enqueue((context.Request.Host.Value ?? "", path + context.Request.QueryString.Value));
        foreach (var header in context.Request.Headers.Keys)
        {
            Headers.Add(header);
        }
        Interlocked.Exchange(ref _arrived, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        if (Handlers.TryGetValue(path, out var handler))
        {
            await handler(context);
            return;
        }
        // /metrics: the app's own Prometheus endpoint, which a sidecar merges into its status port.
        if (path == "/metrics")
        {
            await context.Response.WriteAsync("# TYPE app_requests_handled_total counter\napp_requests_handled_total 42\n");
            return;
        }
        // /status-if/<name>/<code>: this backend answers <code> when it is <name>, 200 otherwise (one bad host among good ones).
        if (path.StartsWith("/status-if/", StringComparison.Ordinal))
        {
            var parts = path.Split('/');
            if (parts[2] == name)
            {
                context.Response.StatusCode = int.Parse(parts[3], System.Globalization.CultureInfo.InvariantCulture);
                return;
            }
        }
        // /flaky/<tenths>: fails (503) <tenths> of every ten requests it receives, in a fixed pattern: deterministic, so a
        // test can state exactly what retries must turn into successes.
        if (path.StartsWith("/flaky/", StringComparison.Ordinal) && Interlocked.Increment(ref _flakyCounter) % 10 < int.Parse(path["/flaky/".Length..], System.Globalization.CultureInfo.InvariantCulture))
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return;
        }
        if (path == "/ws" && context.WebSockets.IsWebSocketRequest)
        {
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            var buffer = new byte[4096];
            while (true)
            {
                var received = await socket.ReceiveAsync(buffer, context.RequestAborted);
                if (received.MessageType == WebSocketMessageType.Close)
                {
                    await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", context.RequestAborted);
                    return;
                }
                await socket.SendAsync(buffer.AsMemory(0, received.Count), received.MessageType, received.EndOfMessage, context.RequestAborted);
            }
        }
        if (path.StartsWith("/slow/", StringComparison.Ordinal))
        {
            await Task.Delay(int.Parse(path["/slow/".Length..], System.Globalization.CultureInfo.InvariantCulture), context.RequestAborted);
        }
        // /gate: held until the test calls OpenGate, so a test keeps requests in flight for as long as it needs without
        // relying on timing (a circuit breaker's admitted requests stay admitted while the surplus is answered).
        if (path == "/gate")
        {
            var waiting = Interlocked.Increment(ref _atGate);
            for (var max = Volatile.Read(ref _maxAtGate); waiting > max; max = Volatile.Read(ref _maxAtGate))
            {
                Interlocked.CompareExchange(ref _maxAtGate, waiting, max);
            }
            try
            {
                await _gate.Task.WaitAsync(context.RequestAborted);
            }
            finally
            {
                Interlocked.Decrement(ref _atGate);
            }
        }
        if (path == "/reset")
        {
            context.Abort();
            return;
        }
        if (path == "/upload")
        {
            long total = 0;
            var buffer = new byte[64 * 1024];
            int read;
            while ((read = await context.Request.Body.ReadAsync(buffer, context.RequestAborted)) > 0)
            {
                total += read;
            }
            await context.Response.WriteAsync($"received={total}");
            return;
        }
        context.Response.Headers["x-backend"] = name;
        await context.Response.WriteAsync($"backend={name} protocol={context.Request.Protocol} host={context.Request.Host} path={path} end-user={context.Request.Headers["end-user"]} request-id={context.Request.Headers["x-request-id"]}");
    }

    public ValueTask DisposeAsync() => _app.DisposeAsync();
}
