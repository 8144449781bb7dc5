using Bowline.Proxy.Configuration;

using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Hosting.Server.Abstractions;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Bowline.Proxy.Listeners;

/// <summary>
/// One xDS listener's sockets: a Kestrel server of its own, so a listener can be opened and drained independently of
/// the others. Requests go straight to <see cref="Http.HttpConnectionManager"/>, with no ASP.NET middleware pipeline in between.
/// </summary>
internal sealed class ListenerServer : IAsyncDisposable
{
    private readonly KestrelServer _server;
    private readonly Application _application;
    private CompiledListener _listener;

    public ListenerServer(CompiledListener listener, Http.HttpConnectionManager handler, IServiceProvider services, ILoggerFactory loggers)
    {
        _listener = listener;
        // AllowAlternateSchemes: h2c connections are marked with a TLS ALPN feature (see Http2PriorKnowledge), so Kestrel would
        // otherwise insist on :scheme https.
        var acceptor = new ConnectionAcceptor(() => Listener, services.GetRequiredService<Tls.SecretStore>(), loggers.CreateLogger<ConnectionAcceptor>());
        var options = new KestrelServerOptions { AddServerHeader = false, ApplicationServices = services, AllowAlternateSchemes = true };
        options.Limits.MaxRequestBodySize = null;
        options.Limits.MinRequestBodyDataRate = null;
        options.Limits.MinResponseDataRate = null;
        options.Limits.Http2.MaxStreamsPerConnection = 1000;
        foreach (var address in listener.Addresses)
        {
            options.Listen(address, l =>
            {
                l.Protocols = HttpProtocols.Http1AndHttp2;
                l.Use(acceptor.Middleware);
            });
        }
        // Inline scheduling: Kestrel runs the request where the socket read completed (the event thread, see
        // DataPathThreading) instead of queueing it to the thread pool.
        var transport = new SocketTransportFactory(Options.Create(new SocketTransportOptions { UnsafePreferInlineScheduling = DataPathThreading.Inline }), loggers);
        _server = new KestrelServer(Options.Create(options), transport, loggers);
        _application = new Application(this, handler);
    }

    /// <summary>The listener as last configured; serves requests while it drains after removal.</summary>
    /// <remarks>Written by the xDS loop, read by every request.</remarks>
    public CompiledListener Listener
    {
        get => Volatile.Read(ref _listener);
        set => Volatile.Write(ref _listener, value);
    }

    public Task StartAsync(CancellationToken cancellationToken) => _server.StartAsync(_application, cancellationToken);

    /// <summary>Stops accepting, lets in-flight requests finish until <paramref name="cancellationToken"/> fires, then aborts the rest.</summary>
    public Task StopAsync(CancellationToken cancellationToken) => _server.StopAsync(cancellationToken);

    public ValueTask DisposeAsync()
    {
        _server.Dispose();
        return ValueTask.CompletedTask;
    }

    private sealed class Application(ListenerServer owner, Http.HttpConnectionManager handler) : IHttpApplication<HttpContext>
    {
        /// <summary>Reuses the connection's context object across its requests, as ASP.NET's own hosting layer does.</summary>
        public HttpContext CreateContext(IFeatureCollection contextFeatures)
        {
            if (contextFeatures is IHostContextContainer<HttpContext> container)
            {
                if (container.HostContext is DefaultHttpContext reused)
                {
                    reused.Initialize(contextFeatures);
                    return reused;
                }
                var created = new DefaultHttpContext(contextFeatures);
                container.HostContext = created;
                return created;
            }
            return new DefaultHttpContext(contextFeatures);
        }

        public Task ProcessRequestAsync(HttpContext context) => handler.HandleAsync(context, owner.Listener);

        public void DisposeContext(HttpContext context, Exception? exception)
        {
            if (context is DefaultHttpContext defaultContext)
            {
                defaultContext.Uninitialize();
            }
        }
    }
}
