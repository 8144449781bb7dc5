using System.CommandLine;
using System.Globalization;
using System.Net;
using Bowline.Proxy;

namespace Bowline.Commands;

/// <summary><c>bowline proxy</c>: the sidecar (or, with <c>--gateway</c>, an ingress gateway), programmed over xDS.</summary>
public static class ProxyCommand
{
    public static Command Create()
    {
        var xds = new Option<string>("--xds") { Description = "Control plane xDS address: plaintext http://HOST:15010, or https://HOST:15012 (mutual TLS, needs --ca-root-file).", DefaultValueFactory = _ => "http://127.0.0.1:15010" };
        var nodeId = new Option<string?>("--node-id") { Description = "xDS node id; default sidecar~<bind>~<workload>.<namespace>~<namespace>.svc.cluster.local (router~... with --gateway)." };
        var workload = new Option<string>("--workload") { Description = "Workload (pod) name.", Required = true };
        var ns = new Option<string>("--namespace") { Description = "Workload namespace.", DefaultValueFactory = _ => "default" };
        var labels = new Option<string[]>("--label") { Description = "Workload label key=value; repeat." };
        var serviceAccount = new Option<string>("--service-account") { Description = "Workload service account.", DefaultValueFactory = _ => "default" };
        var adminPort = new Option<int>("--admin-port") { Description = "Admin port on loopback; 0 picks a free one.", DefaultValueFactory = _ => 15000 }.Port();
        var statusPort = new Option<int>("--status-port") { Description = "Istio's status port on the --bind address: merged Prometheus metrics at /stats/prometheus and /healthz/ready; 0 picks a free one.", DefaultValueFactory = _ => 15020 }.Port();
        var appMetrics = new Option<string?>("--app-metrics") { Description = "The app's own Prometheus endpoint (what Istio's prometheus.io/port and prometheus.io/path annotations name), e.g. http://127.0.0.1:9090/metrics; merged into the status port's metrics." };
        var bind = new Option<string>("--bind") { Description = "Address the proxy's listeners bind to.", DefaultValueFactory = _ => "127.0.0.1" };
        var outbound = new Option<int?>("--outbound-port") { Description = "Explicit mode: the port apps use as their HTTP proxy (HTTP_PROXY)." }.Port();
        var inbound = new Option<string[]>("--inbound") { Description = "Explicit mode: CONTAINERPORT=LISTEN:APP — accept traffic for the workload's container port on LISTEN, forward it to the app on APP. Repeat." };
        var outboundTcp = new Option<string[]>("--outbound-tcp") { Description = "Explicit mode: HOST:PORT=LOCALPORT — the app reaches the TCP service port HOST:PORT (mysqldb.default.svc.cluster.local:3306) by dialing LOCALPORT. Repeat." };
        var gateway = new Option<bool>("--gateway") { Description = "Run as an ingress gateway serving Istio Gateway resources." };
        var gatewayPorts = new Option<string[]>("--gateway-port") { Description = "Gateway: SERVERPORT=LOCALPORT — bind the Gateway server port SERVERPORT on LOCALPORT. Repeat." };
        var locality = new Option<string>("--locality") { Description = "Where the workload runs: region/zone/subzone, as Istio writes it; the control plane fails over by distance from it.", DefaultValueFactory = _ => "" };
        var drain = new Option<int>("--drain-seconds") { Description = "How long removed listeners and shutdown let requests finish.", DefaultValueFactory = _ => 5 };
        var caTokenFile = new Option<string?>("--ca-token-file") { Description = "File holding this workload's bootstrap token for the CA; with it the proxy gets a SPIFFE certificate and speaks mesh mTLS." };
        var caAddress = new Option<string?>("--ca") { Description = "The CA's address (IstioCertificateService); default the --xds address." };
        var caRootFile = new Option<string?>("--ca-root-file") { Description = "PEM root(s) of the mesh CA that the control plane's TLS certificate must chain to (root-cert.pem); with it the proxy reaches the CA and ADS over TLS on an https --xds address." };
        var serverName = new Option<string>("--xds-server-name") { Description = "The DNS name the control plane's TLS certificate must carry.", DefaultValueFactory = _ => "istiod.istio-system.svc" };
        var trustDomain = new Option<string>("--trust-domain") { Description = "The SPIFFE trust domain of this workload's identity.", DefaultValueFactory = _ => "cluster.local" };
        var concurrency = new Option<int?>("--concurrency") { Description = "Event threads that run the data path, as Istio's proxy concurrency: 2 when unset, 0 for one per core." };
        var logLevel = CommonOptions.LogLevel();

        var command = new Command("proxy", "Run a sidecar proxy (or an ingress gateway) programmed by the control plane over xDS.")
        {
            xds, nodeId, workload, ns, labels, serviceAccount, adminPort, statusPort, appMetrics, bind, outbound, inbound, outboundTcp, gateway, gatewayPorts, locality, drain, caTokenFile, caAddress, caRootFile, serverName, trustDomain, concurrency, logLevel,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            ProxyOptions options;
            try
            {
                var bindAddress = IPAddress.TryParse(result.GetValue(bind), out var b) ? b : throw new FormatException($"--bind {result.GetValue(bind)} is not an IP address");
                var isGateway = result.GetValue(gateway);
                var name = result.GetValue(workload)!;
                var roots = result.GetValue(caRootFile) is { } rootFile ? ReadRoots(rootFile) : null;
                var xdsText = result.GetValue(xds)!;
                var xdsUri = Uri.TryCreate(xdsText, UriKind.Absolute, out var uri) ? uri : throw new FormatException($"--xds {xdsText} is not a URL like http://127.0.0.1:15010");
                if (roots is not null && xdsUri.Scheme != Uri.UriSchemeHttps)
                {
                    throw new FormatException($"--ca-root-file is given, so the control plane is reached over TLS, but --xds {xdsText} is not https: use https://HOST:15012");
                }
                if (roots is null && xdsUri.Scheme == Uri.UriSchemeHttps)
                {
                    throw new FormatException($"--xds {xdsText} is TLS, but there is no --ca-root-file to verify the control plane with: pass the mesh CA's root-cert.pem, or use the plaintext http://HOST:15010");
                }
                var space = result.GetValue(ns)!;
                options = new ProxyOptions
                {
                    XdsAddress = xdsUri,
                    ControlPlaneRootsPem = roots,
                    ControlPlaneServerName = result.GetValue(serverName)!,
                    NodeId = result.GetValue(nodeId) ?? $"{(isGateway ? "router" : "sidecar")}~{bindAddress}~{name}.{space}~{space}.svc.cluster.local",
                    WorkloadName = name,
                    Namespace = space,
                    Labels = ParsePairs(result.GetValue(labels) ?? [], "--label", '=').ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal),
                    ServiceAccount = result.GetValue(serviceAccount)!,
                    AdminPort = result.GetValue(adminPort),
                    StatusPort = result.GetValue(statusPort),
                    AppMetrics = result.GetValue(appMetrics) is { } metricsUrl ? (Uri.TryCreate(metricsUrl, UriKind.Absolute, out var metricsUri) && metricsUri.Scheme == Uri.UriSchemeHttp ? metricsUri : throw new FormatException($"--app-metrics {metricsUrl} is not an http URL like http://127.0.0.1:9090/metrics")) : null,
                    BindAddress = bindAddress,
                    OutboundPort = result.GetValue(outbound),
                    InboundPorts = (result.GetValue(inbound) ?? []).Select(ParseInbound).ToList(),
                    OutboundTcpPorts = ParsePairs(result.GetValue(outboundTcp) ?? [], "--outbound-tcp", '=').ToDictionary(p => ServicePort(p.Key), p => Port(p.Value, "--outbound-tcp"), StringComparer.Ordinal),
                    Gateway = isGateway,
                    Locality = result.GetValue(locality) is { } where && where.Split('/').Length <= 3 ? where : throw new FormatException($"--locality {result.GetValue(locality)}: expected region/zone/subzone"),
                    GatewayPorts = ParsePairs(result.GetValue(gatewayPorts) ?? [], "--gateway-port", '=').ToDictionary(p => Port(p.Key, "--gateway-port"), p => Port(p.Value, "--gateway-port")),
                    DrainTimeout = TimeSpan.FromSeconds(result.GetValue(drain)),
                    CaToken = result.GetValue(caTokenFile) is { } tokenFile ? ReadToken(tokenFile) : null,
                    CaAddress = result.GetValue(caAddress) is { } ca ? (Uri.TryCreate(ca, UriKind.Absolute, out var caUri) ? caUri : throw new FormatException($"--ca {ca} is not a URL")) : null,
                    TrustDomain = result.GetValue(trustDomain)!,
                };
            }
            catch (FormatException e)
            {
                await Console.Error.WriteLineAsync($"bowline proxy: {e.Message}").ConfigureAwait(false);
                return 2;
            }

            if (result.GetValue(concurrency) is < 0 and var threads)
            {
                await Console.Error.WriteLineAsync($"bowline proxy: --concurrency {threads}: expected a thread count, or 0 for one per core").ConfigureAwait(false);
                return 2;
            }
            SetEventThreads(result.GetValue(concurrency));

            using var signals = new ShutdownSignals();
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, signals.Token);
            var shutdown = linked.Token;
            await using var host = ProxyHost.Create(options, CommonOptions.Logging(result.GetValue(logLevel)));
            try
            {
                await host.StartAsync(shutdown).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                await Console.Error.WriteLineAsync($"bowline proxy: cannot listen on admin port {options.AdminPort} or status port {options.StatusPort}: {e.Message}. Pass --admin-port 0 / --status-port 0 for a free port").ConfigureAwait(false);
                return 1;
            }
            Console.WriteLine($"bowline proxy: {options.NodeId} admin {host.AdminAddress} xds {options.XdsAddress}");
            await CommonOptions.WaitForShutdownAsync(shutdown, host.Stopping).ConfigureAwait(false);
            await host.StopAsync().ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    /// <summary>
    /// The socket event threads the data path runs on (the proxy's DataPathThreading): .NET starts them, reading this
    /// variable once, when the process's first socket goes asynchronous, which has not happened yet. As Istio's proxy
    /// concurrency: an explicit --concurrency wins (0: one per core); unset, a value already in the environment is kept,
    /// else 2, so a sidecar on a large machine does not start a thread per core. (.NET's own default is one engine for
    /// up to 30 cores.)
    /// </summary>
    private static void SetEventThreads(int? concurrency)
    {
        const string Variable = "DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT";
        if (concurrency is null && Environment.GetEnvironmentVariable(Variable) is not null)
        {
            return;
        }
        var threads = concurrency switch { null => 2, 0 => Environment.ProcessorCount, var n => n.Value };
        Environment.SetEnvironmentVariable(Variable, threads.ToString(CultureInfo.InvariantCulture));
    }

    private static InboundPortMapping ParseInbound(string text)
    {
        // 9080=41000:41001
        var parts = text.Split('=', ':');
        if (parts.Length != 3)
        {
            throw new FormatException($"--inbound {text}: expected CONTAINERPORT=LISTEN:APP, e.g. 9080=15006:9080");
        }
        return new InboundPortMapping(Port(parts[0], "--inbound"), Port(parts[1], "--inbound"), Port(parts[2], "--inbound"));
    }

    private static IEnumerable<KeyValuePair<string, string>> ParsePairs(string[] values, string option, char separator) =>
        values.Select(v => v.Split(separator, 2) is [var k, var val] && k.Length > 0 ? KeyValuePair.Create(k, val) : throw new FormatException($"{option} {v}: expected KEY{separator}VALUE"));

    private static string ServicePort(string text) =>
        text.LastIndexOf(':') is var colon and > 0 && Port(text[(colon + 1)..], "--outbound-tcp") > 0 ? text : throw new FormatException($"--outbound-tcp {text}: expected HOST:PORT=LOCALPORT, e.g. mysqldb.default.svc.cluster.local:3306=41000");

    private static int Port(string text, string option) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65536 ? port : throw new FormatException($"{option}: '{text}' is not a port number");

    /// <summary>Reads and checks the root PEM now, so a wrong file is a clear error at start rather than a refused handshake later.</summary>
    private static string ReadRoots(string path)
    {
        string pem;
        try
        {
            pem = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FormatException($"--ca-root-file {path}: {e.Message}");
        }
        var roots = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
        try
        {
            roots.ImportFromPem(pem);
        }
        catch (System.Security.Cryptography.CryptographicException e)
        {
            throw new FormatException($"--ca-root-file {path} is not PEM certificates ({e.Message}); pass the mesh CA's root-cert.pem");
        }
        return roots.Count > 0 ? pem : throw new FormatException($"--ca-root-file {path} holds no PEM CERTIFICATE; pass the mesh CA's root-cert.pem");
    }

    /// <summary>The token comes from a file, never the command line, where every local user could read it.</summary>
    private static string ReadToken(string path)
    {
        try
        {
            var token = File.ReadAllText(path).Trim();
            return token.Length > 0 ? token : throw new FormatException($"--ca-token-file {path} is empty");
        }
        catch (IOException e)
        {
            throw new FormatException($"--ca-token-file {path}: {e.Message}");
        }
        catch (UnauthorizedAccessException e)
        {
            throw new FormatException($"--ca-token-file {path}: {e.Message}");
        }
    }
}
