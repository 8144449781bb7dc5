using System.Net;
using System.Text.Json;
using Bowline.Ca;
using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Snapshots;
using Bowline.ControlPlane.Xds;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Bowline.ControlPlane;

/// <summary>Composes one control plane process: the config watcher, the xDS server (plaintext and TLS) with the CA, and the monitoring endpoints.</summary>
public sealed partial class ControlPlaneHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ControlPlaneOptions _options;
    private Uri? _xds;

    private ControlPlaneHost(WebApplication app, ControlPlaneOptions options)
    {
        _app = app;
        _options = options;
    }

    /// <summary>The bound plaintext xDS address (<c>http://127.0.0.1:15010</c>), known after <see cref="StartAsync"/>; throws when <see cref="ControlPlaneOptions.PlaintextXds"/> is off.</summary>
    public Uri XdsAddress => _xds ?? throw new InvalidOperationException(_options.PlaintextXds ? "the control plane has not started" : "plaintext xDS is off (ControlPlaneOptions.PlaintextXds); use SecureXdsAddress");

    /// <summary>The bound TLS xDS and CA address (<c>https://127.0.0.1:15012</c>), known after <see cref="StartAsync"/>; null without a CA.</summary>
    public Uri? SecureXdsAddress { get; private set; }

    public Uri MonitoringAddress { get; private set; } = null!;

    internal MeshState Mesh => _app.Services.GetRequiredService<MeshState>();

    internal IServiceProvider Services => _app.Services;

    internal ConnectedProxies Proxies => _app.Services.GetRequiredService<ConnectedProxies>();

    public static ControlPlaneHost Create(ControlPlaneOptions options, Action<ILoggingBuilder>? logging = null, TimeProvider? time = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        logging?.Invoke(builder.Logging);
        builder.Services.AddSingleton<IHostLifetime, CommandOwnedLifetime>();
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(time ?? TimeProvider.System);
        builder.Services.AddSingleton<MeshState>();
        builder.Services.AddSingleton<ConnectedProxies>();
        builder.Services.AddSingleton(sp => new DirectoryConfigSource(options.ConfigDirectories, sp.GetRequiredService<ILogger<DirectoryConfigSource>>()));
        builder.Services.AddSingleton(sp => new Security.JwksResolver(sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<Security.JwksResolver>>()));
        builder.Services.AddHostedService<ConfigWatcher>();
        builder.Services.AddSingleton<XdsAuthenticator>();
        if (options.Ca is { } ca)
        {
            builder.Services.AddIstioCertificateService(ca);
            builder.Services.AddSingleton<ServingCertificates>();
            // The slim builder leaves Kestrel's TLS support out until asked for.
            builder.WebHost.UseKestrelHttpsConfiguration();
        }
        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = XdsLimits.MaxMessageBytes;
            o.MaxSendMessageSize = XdsLimits.MaxMessageBytes;
        });
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // Kestrel's default windows (768 KiB per stream) are smaller than a large mesh's subscription request.
            kestrel.Limits.Http2.InitialStreamWindowSize = XdsLimits.Http2WindowBytes;
            kestrel.Limits.Http2.InitialConnectionWindowSize = XdsLimits.Http2WindowBytes;
            // The order is the order StartAsync reads the bound addresses in.
            if (options.PlaintextXds)
            {
                kestrel.Listen(options.BindAddress, options.XdsPort, l => l.Protocols = HttpProtocols.Http2);
            }
            if (options.Ca is not null)
            {
                var certificates = kestrel.ApplicationServices.GetRequiredService<ServingCertificates>();
                kestrel.Listen(options.BindAddress, options.SecureXdsPort, l => SecureXdsListener.Configure(l, certificates));
            }
            kestrel.Listen(options.BindAddress, options.MonitoringPort, l => l.Protocols = HttpProtocols.Http1);
        });

        var app = builder.Build();
        app.MapGrpcService<AggregatedDiscoveryServiceImpl>();
        app.MapGrpcService<ClientStatusDiscoveryServiceImpl>();
        if (options.Ca is not null)
        {
            // Opened here, so a bad CA directory fails the start with its message instead of the first CSR.
            app.Services.GetRequiredService<CertificateAuthority>();
            app.Services.GetRequiredService<ServingCertificates>();
            app.MapIstioCertificateService();
            // The operator's root rotation: loopback only, and only on the HTTP/1.1 monitoring port (the xDS ports
            // speak HTTP/2), so no workload can start one. The rotation is staged and drops nothing (docs/security.md).
            app.MapPost("/ca/rotate-root", (HttpContext context, CertificateAuthority ca) =>
            {
                if (context.Request.Protocol != "HTTP/1.1" || context.Connection.RemoteIpAddress is not { } remote || !IPAddress.IsLoopback(remote))
                {
                    return Results.Text("root rotation is only accepted from loopback on the monitoring port\n", statusCode: StatusCodes.Status403Forbidden);
                }
                try
                {
                    var bundle = ca.BeginRootRotation();
                    return Results.Text($"rotation begun: trusted roots {bundle}; leaves switch to {ca.PendingRootThumbprint} once every workload has renewed\n");
                }
                catch (InvalidOperationException e)
                {
                    return Results.Text(e.Message + "\n", statusCode: StatusCodes.Status409Conflict);
                }
            });
            app.MapGet("/debug/ca", (CertificateAuthority ca) => Results.Text(JsonSerializer.Serialize(new
            {
                trustDomain = ca.TrustDomain,
                roots = ca.TrustBundle.Roots.Select(r => new { thumbprint = TrustBundle.Thumbprint(r), subject = r.Subject, notAfter = r.NotAfter.ToUniversalTime() }),
                pendingRoot = ca.PendingRootThumbprint,
            }, Json), "application/json"));
        }
        app.MapGet("/ready", () => Results.Text("ready\n"));
        app.MapGet("/metrics", () => Results.Text(ControlPlaneMetrics.Render(), "text/plain; version=0.0.4"));
        app.MapGet("/debug/connections", (ConnectedProxies proxies) => Results.Text(JsonSerializer.Serialize(proxies.All.Select(Describe), Json), "application/json"));
        app.MapGet("/debug/wait", (string file, string hash, DirectoryConfigSource source, ConnectedProxies proxies) =>
            Results.Text(JsonSerializer.Serialize(ChangeProgress.Of(file, hash, source, proxies), Json), "application/json"));
        app.MapGet("/debug/config", (DirectoryConfigSource source, MeshState mesh, Security.JwksResolver jwks) => Results.Text(JsonSerializer.Serialize(new
        {
            generation = mesh.Current.Config.Generation,
            jwks = jwks.Current.Entries.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => new { source = e.Key, fetched = e.Value.Jwks is not null, fetchedAt = e.Value.FetchedAt, stale = e.Value.Stale, error = e.Value.LastError }),
            resources = mesh.Current.Config.Resources.Select(r => new { kind = r.Meta.Kind, name = r.Meta.Name, @namespace = r.Meta.Namespace, file = r.Meta.File }),
            translationWarnings = mesh.Warnings,
            diagnostics = source.Diagnostics.Select(d => new { severity = d.Severity.ToString(), file = d.File, line = d.Line, resource = d.Resource, field = d.Field, message = d.Message, text = d.ToString() }),
        }, Json), "application/json"));
        return new ControlPlaneHost(app, options);
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _app.StartAsync(cancellationToken).ConfigureAwait(false);
        var addresses = new Queue<Uri>(_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Select(a => new Uri(a)));
        // Kestrel reports endpoints in the order they were configured: plaintext xDS, TLS xDS, then monitoring.
        _xds = _options.PlaintextXds ? addresses.Dequeue() : null;
        SecureXdsAddress = _options.Ca is not null ? addresses.Dequeue() : null;
        MonitoringAddress = addresses.Dequeue();
        var log = _app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<ControlPlaneHost>();
        if (_xds is not null && !IPAddress.IsLoopback(_options.BindAddress))
        {
            Log.PlaintextExposed(log, _xds, _options.Ca is not null ? " and bootstrap tokens" : "");
        }
        if (SecureXdsAddress is null)
        {
            Log.NoSecurePort(log);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => _app.StopAsync(cancellationToken);

    /// <summary>Cancelled when the host stops itself (a background service failed), so the command can exit instead of lingering.</summary>
    public CancellationToken Stopping => _app.Lifetime.ApplicationStopping;

    public ValueTask DisposeAsync() => _app.DisposeAsync();

    private static object Describe(ConnectedProxy proxy) => new
    {
        id = proxy.Node.Id,
        kind = proxy.Node.Kind.ToString(),
        name = proxy.Node.Name,
        @namespace = proxy.Node.Namespace,
        peer = proxy.Peer,
        verifiedIdentity = proxy.VerifiedIdentity,
        connectedAt = proxy.ConnectedAt,
        generation = proxy.Generation,
        types = proxy.Types.OrderBy(t => t.Key, StringComparer.Ordinal).ToDictionary(t => t.Key, t => new
        {
            status = t.Value.Label, sent = t.Value.Sent, acked = t.Value.Acked, synced = t.Value.Synced, rejected = t.Value.Rejected, rejectReason = t.Value.RejectReason, changedAtGeneration = t.Value.SentGeneration,
        }),
    };

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Warning, Message = "xds: plaintext xDS on {Address} is reachable beyond this machine: config{AndTokens} cross it unauthenticated and in the clear. It is meant for the embedded default on loopback; bind to 127.0.0.1, or turn it off (--no-plaintext-xds) and point proxies at the TLS port")]
        public static partial void PlaintextExposed(ILogger logger, Uri address, string andTokens);

        [LoggerMessage(Level = LogLevel.Information, Message = "xds: no TLS xDS port (it needs the CA, --ca-dir, for its certificate and for client certificates)")]
        public static partial void NoSecurePort(ILogger logger);
    }
}
