using Bowline.Commands;
using System.CommandLine;
using System.Net;
using Bowline.ControlPlane;

namespace Bowline.Cli.Commands;

/// <summary><c>bowline controlplane</c>: the registry, config store, translation and xDS server.</summary>
internal static class ControlPlaneCommand
{
    public static Command Create()
    {
        var config = new Option<string[]>("--config") { Description = "Directory of mesh YAML (Istio networking API, Kubernetes Services, WorkloadEntries), watched. Repeat for several.", Required = true, AllowMultipleArgumentsPerToken = false };
        var bind = new Option<string>("--bind") { Description = "Address the xDS and monitoring ports bind to.", DefaultValueFactory = _ => "127.0.0.1" };
        var xdsPort = new Option<int>("--xds-port") { Description = "Plaintext xDS (ADS over gRPC) port; 0 picks a free one.", DefaultValueFactory = _ => 15010 }.Port();
        var secureXdsPort = new Option<int>("--secure-xds-port") { Description = "xDS and the CA over TLS (needs --ca-dir): ADS requires a mesh workload certificate and serves a proxy only its own identity's config; 0 picks a free one.", DefaultValueFactory = _ => 15012 }.Port();
        var noPlaintext = new Option<bool>("--no-plaintext-xds") { Description = "Do not serve plaintext xDS (and the CA) on --xds-port; proxies then use the TLS port." };
        var monitoringPort = new Option<int>("--monitoring-port") { Description = "Monitoring port (/metrics, /ready, /debug/*); 0 picks a free one.", DefaultValueFactory = _ => 15014 }.Port();
        var debounce = new Option<int>("--debounce-ms") { Description = "How long a burst of config changes must be quiet before it is pushed, in milliseconds.", DefaultValueFactory = _ => 100 };
        var caDirectory = new Option<string?>("--ca-dir") { Description = "Run the certificate authority with its root (generated on first start) and bootstrap tokens in this directory, and turn on automatic mTLS and PeerAuthentication." };
        var trustDomain = new Option<string>("--trust-domain") { Description = "The SPIFFE trust domain of workload identities.", DefaultValueFactory = _ => "cluster.local" };
        var paths = new Option<string>("--path-normalization")
        {
            Description = "How request paths are normalized before routing and authorization (Istio's meshConfig.pathNormalization): NONE, BASE, MERGE_SLASHES or DECODE_AND_MERGE_SLASHES.",
            DefaultValueFactory = _ => "BASE",
        };
        paths.AcceptOnlyFromAmong("NONE", "BASE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES");
        var accessLogFile = new Option<string?>("--access-log-file") { Description = "Istio's meshConfig.accessLogFile: every sidecar and gateway logs each request to this path (/dev/stdout for its own output); none by default." };
        var accessLogEncoding = new Option<string>("--access-log-encoding") { Description = "Istio's meshConfig.accessLogEncoding: TEXT or JSON.", DefaultValueFactory = _ => "TEXT" };
        accessLogEncoding.AcceptOnlyFromAmong("TEXT", "JSON");
        var accessLogFormat = new Option<string?>("--access-log-format") { Description = "Istio's meshConfig.accessLogFormat: an Envoy format string (TEXT) or a JSON object of key to format string (JSON); Istio's default when absent." };
        var logLevel = CommonOptions.LogLevel();

        var command = new Command("controlplane", "Run the control plane: watch config, translate it to Envoy xDS v3 and serve it over ADS.")
        {
            config, bind, xdsPort, secureXdsPort, noPlaintext, monitoringPort, debounce, caDirectory, trustDomain, paths, accessLogFile, accessLogEncoding, accessLogFormat, logLevel,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            if (!IPAddress.TryParse(result.GetValue(bind), out var address))
            {
                await Console.Error.WriteLineAsync($"bowline controlplane: --bind {result.GetValue(bind)} is not an IP address").ConfigureAwait(false);
                return 2;
            }
            if (result.GetValue(config)!.FirstOrDefault(d => !Directory.Exists(d)) is { } missing)
            {
                await Console.Error.WriteLineAsync($"bowline controlplane: --config {missing} does not exist; create it or point at your mesh YAML").ConfigureAwait(false);
                return 2;
            }
            if (result.GetValue(debounce) < 0)
            {
                await Console.Error.WriteLineAsync("bowline controlplane: --debounce-ms must be 0 or more").ConfigureAwait(false);
                return 2;
            }
            if (result.GetValue(noPlaintext) && result.GetValue(caDirectory) is null)
            {
                await Console.Error.WriteLineAsync("bowline controlplane: --no-plaintext-xds leaves no xDS port: the TLS port needs the CA, so give --ca-dir too").ConfigureAwait(false);
                return 2;
            }
            var encoding = result.GetValue(accessLogEncoding) == "JSON" ? Bowline.ControlPlane.Config.AccessLogEncoding.Json : Bowline.ControlPlane.Config.AccessLogEncoding.Text;
            if (encoding == Bowline.ControlPlane.Config.AccessLogEncoding.Json && result.GetValue(accessLogFormat) is { } jsonFormat && !Bowline.ControlPlane.Config.AccessLogFormats.IsJsonObject(jsonFormat))
            {
                await Console.Error.WriteLineAsync("bowline controlplane: --access-log-format with --access-log-encoding JSON must be a JSON object of key to format string, e.g. {\"code\": \"%RESPONSE_CODE%\"}").ConfigureAwait(false);
                return 2;
            }
            var options = new ControlPlaneOptions
            {
                ConfigDirectories = result.GetValue(config)!,
                BindAddress = address,
                XdsPort = result.GetValue(xdsPort),
                PlaintextXds = !result.GetValue(noPlaintext),
                SecureXdsPort = result.GetValue(secureXdsPort),
                MonitoringPort = result.GetValue(monitoringPort),
                Debounce = TimeSpan.FromMilliseconds(result.GetValue(debounce)),
                Ca = result.GetValue(caDirectory) is { } ca ? new Bowline.Ca.CaOptions { Directory = ca, TrustDomain = result.GetValue(trustDomain)! } : null,
                MeshMtls = result.GetValue(caDirectory) is not null,
                AccessLogFile = result.GetValue(accessLogFile) is { Length: > 0 } logFile ? logFile : null,
                AccessLogEncoding = encoding,
                AccessLogFormat = result.GetValue(accessLogFormat),
                PathNormalization = result.GetValue(paths) switch
                {
                    "NONE" => Bowline.ControlPlane.Config.PathNormalization.None,
                    "MERGE_SLASHES" => Bowline.ControlPlane.Config.PathNormalization.MergeSlashes,
                    "DECODE_AND_MERGE_SLASHES" => Bowline.ControlPlane.Config.PathNormalization.DecodeAndMergeSlashes,
                    _ => Bowline.ControlPlane.Config.PathNormalization.Base,
                },
            };
            using var signals = new ShutdownSignals();
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, signals.Token);
            var shutdown = linked.Token;
            await using var host = ControlPlaneHost.Create(options, CommonOptions.Logging(result.GetValue(logLevel)));
            try
            {
                await host.StartAsync(shutdown).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                await Console.Error.WriteLineAsync($"bowline controlplane: cannot listen: {e.Message}. Another control plane may be running; pass --xds-port 0 --secure-xds-port 0 --monitoring-port 0 for free ports").ConfigureAwait(false);
                return 1;
            }
            // Machine-readable, so a supervisor (bowline up, a test) learns the bound ports when it asked for port 0.
            Console.WriteLine($"bowline controlplane: xds {(options.PlaintextXds ? host.XdsAddress : "off")} secure-xds {host.SecureXdsAddress?.ToString() ?? "off"} monitoring {host.MonitoringAddress}");
            await CommonOptions.WaitForShutdownAsync(shutdown, host.Stopping).ConfigureAwait(false);
            using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await host.StopAsync(stopping.Token).ConfigureAwait(false);
            return 0;
        });
        return command;
    }
}
