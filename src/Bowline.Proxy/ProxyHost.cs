using System.Runtime.InteropServices;
using System.Net;
using Bowline.Proxy.Admin;
using Bowline.Proxy.Clusters;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Listeners;
using Bowline.Proxy.Stats;
using Bowline.Proxy.Xds;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Bowline.Proxy;

/// <summary>
/// Composes one proxy process: the admin server (which also hosts the DI container), the xDS client that owns
/// configuration, and the listeners it opens. Stopping drains listeners before the process exits.
/// </summary>
public sealed class ProxyHost : IAsyncDisposable
{
    private readonly WebApplication _admin;
    private readonly CancellationTokenSource _stopping = new();
    private Task? _xds;
    private PosixSignalRegistration? _reopenSignal;

    private ProxyHost(WebApplication admin) => _admin = admin;

    public Uri AdminAddress { get; private set; } = null!;

    /// <summary>The status port's address (merged metrics, readiness), or null when it is off.</summary>
    public Uri? StatusAddress { get; private set; }

    /// <param name="random">Used from request threads for weighted picks and balancing: must be thread-safe (the default, <see cref="Random.Shared"/>, is).</param>
    public static ProxyHost Create(ProxyOptions options, Action<ILoggingBuilder>? logging = null, TimeProvider? time = null, Random? random = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        logging?.Invoke(builder.Logging);
        var services = builder.Services;
        services.AddSingleton<Microsoft.Extensions.Hosting.IHostLifetime, CommandOwnedLifetime>();
        // Kestrel warns that cleartext Http1AndHttp2 falls back to HTTP/1.1; Http2PriorKnowledge makes that untrue here.
        builder.Logging.AddFilter("Microsoft.AspNetCore.Server.Kestrel", LogLevel.Error);
        services.AddSingleton(options);
        services.AddSingleton(time ?? TimeProvider.System);
        services.AddSingleton(random ?? Random.Shared);
        services.AddHttpForwarder();
        services.AddSingleton<ProxyStats>();
        services.AddSingleton<Telemetry.IstioMetrics>();
        services.AddSingleton<Telemetry.LocalWorkload>();
        services.AddSingleton<PrometheusEndpoint>();
        services.AddSingleton<Tls.SecretStore>();
        services.AddSingleton<SnapshotHolder>();
        services.AddSingleton<ConnectionPools>();
        services.AddSingleton<Clusters.Dns.IDnsResolver, Clusters.Dns.SystemDnsResolver>();
        services.AddSingleton<ClusterManager>();
        services.AddSingleton<Filters.Http.Router.RouterFilterFactory>();
        services.AddSingleton<Filters.Http.HttpFilterCatalog>();
        services.AddSingleton<ClusterCompiler>();
        services.AddSingleton<RouteCompiler>();
        services.AddSingleton<AccessLogs.AccessLogFiles>();
        services.AddSingleton<Tracing.SpanSinks>();
        services.AddSingleton<ListenerCompiler>();
        services.AddSingleton<ProxyConfigCompiler>();
        services.AddSingleton<Http.HttpConnectionManager>();
        services.AddSingleton<ListenerManager>();
        services.AddSingleton<ConfigApplier>();
        services.AddSingleton(new AdsProgressOptions { StallTimeout = options.XdsStallTimeout });
        services.AddSingleton<AdsClient>();
        services.AddSingleton<Identity.WorkloadAgent>();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            // Admin is loopback only: it reveals the whole config.
            k.Listen(IPAddress.Loopback, options.AdminPort, l => l.Protocols = HttpProtocols.Http1);
            if (options.StatusPort is { } status)
            {
                k.Listen(options.BindAddress, status, l => l.Protocols = HttpProtocols.Http1);
            }
        });

        var app = builder.Build();
        var host = new ProxyHost(app);
        // Admin and the status port share one server; the status port, which is not loopback-only, serves only its two paths.
        bool IsAdmin(HttpContext context) => context.Connection.LocalPort == host.AdminAddress?.Port;
        app.Use((context, next) =>
        {
            if (!IsAdmin(context) && !StatusEndpoints.Serves(context.Request.Path))
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }
            return next(context);
        });
        StatusEndpoints.Map(app, app.Services.GetRequiredService<PrometheusEndpoint>(), app.Services.GetRequiredService<ConfigApplier>(), IsAdmin);
        AdminEndpoints.Map(app, app.Services.GetRequiredService<SnapshotHolder>(), app.Services.GetRequiredService<ConfigApplier>(), app.Services.GetRequiredService<ProxyStats>(),
            app.Services.GetRequiredService<Tls.SecretStore>(), app.Services.GetRequiredService<TimeProvider>(), app.Services.GetRequiredService<AccessLogs.AccessLogFiles>());
        return host;
    }

    internal IServiceProvider Services => _admin.Services;

    /// <summary>Cancelled when the host stops itself, so the command can exit instead of lingering.</summary>
    public CancellationToken Stopping => _admin.Lifetime.ApplicationStopping;

    internal SnapshotHolder Snapshots => _admin.Services.GetRequiredService<SnapshotHolder>();

    internal ProxyStats Stats => _admin.Services.GetRequiredService<ProxyStats>();

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (OperatingSystem.IsLinux())
        {
            // Envoy's signal for log rotation: reopen every access log file (SIGUSR1 is 10 on Linux). Registered first,
            // and cancelled, or .NET would re-raise it with its default action, which ends the process.
            var files = _admin.Services.GetRequiredService<AccessLogs.AccessLogFiles>();
            _reopenSignal = PosixSignalRegistration.Create((PosixSignal)10, context =>
            {
                context.Cancel = true;
                files.ReopenAll();
            });
        }
        await _admin.StartAsync(cancellationToken).ConfigureAwait(false);
        var addresses = _admin.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Select(a => new Uri(a)).ToList();
        // Kestrel reports its listeners in the order they were configured: admin first, then the status port.
        AdminAddress = addresses[0];
        StatusAddress = addresses.Count > 1 ? addresses[1] : null;
        var log = _admin.Services.GetRequiredService<ILoggerFactory>().CreateLogger<ProxyHost>();
        Log.DataPath(log, DataPathThreading.Describe());
        // The workload certificate first, as Envoy waits for its SDS secrets: bounded, so a CA outage delays mTLS, not the proxy.
        using (var first = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            first.CancelAfter(TimeSpan.FromSeconds(15));
            await _admin.Services.GetRequiredService<Identity.WorkloadAgent>().StartAsync(first.Token).ConfigureAwait(false);
        }
        var crashes = Stats.Get("control_plane.xds.loop_crashed");
        _xds = _admin.Services.GetRequiredService<AdsClient>().RunAsync(_stopping.Token).ContinueWith(t =>
        {
            if (t.IsFaulted)
            {
                // The last good config keeps serving, but nothing will update it: make that loud.
                crashes.Increment();
                Log.XdsLoopCrashed(log, t.Exception!.InnerException!);
            }
        }, TaskScheduler.Default);
    }

    /// <summary>Stops the xDS client, drains every listener (bounded by the drain timeout), then stops admin.</summary>
    public async Task StopAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            if (_xds is not null)
            {
                await _xds.ConfigureAwait(false);
            }
        }
        finally
        {
            await _admin.Services.GetRequiredService<ListenerManager>().DisposeAsync().ConfigureAwait(false);
            await _admin.Services.GetRequiredService<Identity.WorkloadAgent>().DisposeAsync().ConfigureAwait(false);
            await _admin.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _reopenSignal?.Dispose();
        await _admin.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }
}

internal static partial class Log
{
    [LoggerMessage(Level = LogLevel.Critical, Message = "xds: the xDS client stopped on an unexpected error; the proxy keeps serving its last config but will not receive updates. Restart it")]
    public static partial void XdsLoopCrashed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "data path: connections run {Mode}")]
    public static partial void DataPath(ILogger logger, string mode);
}
