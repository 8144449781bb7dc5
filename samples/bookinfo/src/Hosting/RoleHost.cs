using System.Net;
using Bowline.Samples.Bookinfo.Json;

namespace Bowline.Samples.Bookinfo.Hosting;

/// <summary>Runs one role as a small ASP.NET Core app on <c>http://127.0.0.1:$PORT</c>.</summary>
internal static class RoleHost
{
    /// <summary>Istio's bookinfo services all listen on 9080.</summary>
    private const int DefaultPort = 9080;

    public static async Task RunAsync(IRole role, string[] args)
    {
        int port = Env.GetPort("PORT", DefaultPort);

        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(args);

        // PORT alone decides the address: `bowline up` hands every workload its own port and
        // puts a sidecar in front of it, so ASPNETCORE_URLS / ASPNETCORE_HTTP_PORTS left in the
        // environment must not move or add a listener. This source, added last, wins over the
        // environment. (Kestrel's own Listen() would also win, but logs a warning on every start.)
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            [WebHostDefaults.ServerUrlsKey] = $"http://{IPAddress.Loopback}:{port}",
            [WebHostDefaults.HttpPortsKey] = string.Empty,
            [WebHostDefaults.HttpsPortsKey] = string.Empty,
        });

        // Warnings only: the app's own degraded-mode lines and ASP.NET Core's failures.
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(console => console.SingleLine = true);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);

        role.AddServices(builder.Services);

        WebApplication app = builder.Build();
        var health = new HealthStatus(role.HealthStatus);
        app.MapGet("/health", () => Results.Json(health, BookinfoJson.Context.HealthStatus));
        role.MapEndpoints(app);

        app.Lifetime.ApplicationStarted.Register(
            () => Console.WriteLine($"bookinfo {role.Name} listening on http://127.0.0.1:{port}"));

        await app.RunAsync();
    }
}
