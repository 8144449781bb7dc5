using Bowline.ControlPlane.Config;
using Envoy.Config.Accesslog.V3;
using Envoy.Config.Core.V3;
using Envoy.Extensions.AccessLoggers.File.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// Istio's mesh-wide access log (pilot's buildAccessLog from meshConfig): an <c>envoy.access_loggers.file</c> entry on
/// an HTTP connection manager, in Istio's default text format (EnvoyTextLogFormat) or its JSON keys
/// (EnvoyJSONLogFormatIstio), or the mesh's own <c>accessLogFormat</c>.
/// </summary>
internal static class AccessLogBuilder
{
    public const string FileLogger = "envoy.access_loggers.file";

    /// <summary>Istio's default text format, byte for byte.</summary>
    public const string IstioTextFormat = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% "
        + "%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% "
        + "%DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" "
        + "%UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

    /// <summary>Istio's default JSON keys and their operators.</summary>
    private static readonly (string Key, string Operator)[] IstioJsonFields =
    [
        ("start_time", "%START_TIME%"), ("route_name", "%ROUTE_NAME%"), ("method", "%REQ(:METHOD)%"), ("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
        ("protocol", "%PROTOCOL%"), ("response_code", "%RESPONSE_CODE%"), ("response_flags", "%RESPONSE_FLAGS%"), ("response_code_details", "%RESPONSE_CODE_DETAILS%"),
        ("connection_termination_details", "%CONNECTION_TERMINATION_DETAILS%"), ("bytes_received", "%BYTES_RECEIVED%"), ("bytes_sent", "%BYTES_SENT%"),
        ("duration", "%DURATION%"), ("upstream_service_time", "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%"), ("x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"),
        ("user_agent", "%REQ(USER-AGENT)%"), ("request_id", "%REQ(X-REQUEST-ID)%"), ("authority", "%REQ(:AUTHORITY)%"), ("upstream_host", "%UPSTREAM_HOST%"),
        ("upstream_cluster", "%UPSTREAM_CLUSTER_RAW%"), ("upstream_local_address", "%UPSTREAM_LOCAL_ADDRESS%"), ("downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%"),
        ("downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"), ("requested_server_name", "%REQUESTED_SERVER_NAME%"),
        ("upstream_transport_failure_reason", "%UPSTREAM_TRANSPORT_FAILURE_REASON%"),
    ];

    /// <summary>
    /// The access log of one HCM of <paramref name="node"/> on the given side: the Telemetry resource that applies to
    /// the workload (each entry for this side and not disabled, to its provider, with its filter), else meshConfig's.
    /// </summary>
    public static void Apply(HttpConnectionManager hcm, MeshConfig mesh, ProxyNode node, TelemetryMode side, Snapshots.SnapshotBuilder snapshot) =>
        hcm.AccessLog.AddRange(Entries(mesh, node, side, snapshot));

    /// <summary>
    /// The same access logging on every tcp_proxy of a listener's chains (Istio's TCP access log, the same format: a
    /// connection's REQ, RESP and PROTOCOL are <c>-</c>). A connection has no response code: a response-code filter
    /// compares 0, so <c>response.code &gt;= 400</c> logs no TCP connection.
    /// </summary>
    public static void ApplyToTcp(Envoy.Config.Listener.V3.Listener listener, MeshConfig mesh, ProxyNode node, TelemetryMode side, Snapshots.SnapshotBuilder snapshot)
    {
        var entries = Entries(mesh, node, side, snapshot);
        if (entries.Count == 0)
        {
            return;
        }
        foreach (var filter in listener.FilterChains.SelectMany(c => c.Filters).Where(f => f.Name == TcpProxyBuilder.FilterName))
        {
            var proxy = filter.TypedConfig.Unpack<Envoy.Extensions.Filters.Network.TcpProxy.V3.TcpProxy>();
            proxy.AccessLog.AddRange(entries.Select(e => e.Clone()));
            filter.TypedConfig = Any.Pack(proxy);
        }
    }

    /// <summary>
    /// Istio's mergeLogs for one side: meshConfig's file (the built-in envoy provider) and <c>defaultProviders.accessLogging</c>
    /// are the defaults, then each Telemetry layer (root, namespace, workload) sets a provider for a side with its filter,
    /// or removes it (<c>disabled</c>); one logger per provider remains, resolved against meshConfig's extensionProviders.
    /// </summary>
    private static List<AccessLog> Entries(MeshConfig mesh, ProxyNode node, TelemetryMode side, Snapshots.SnapshotBuilder snapshot)
    {
        const string Envoy = Config.Parsing.TelemetryParser.EnvoyProvider;
        var providers = new Dictionary<string, AccessLogCondition?>(StringComparer.Ordinal);
        if (mesh.Telemetry.AccessLogFile is not null)
        {
            providers[Envoy] = null;
        }
        foreach (var name in mesh.Telemetry.DefaultAccessLogging)
        {
            providers[name] = null;
        }
        foreach (var layer in mesh.AccessLoggingLayers(node.Namespace, node.Labels))
        {
            foreach (var entry in layer.AccessLogging.Where(e => e.Mode == TelemetryMode.ClientAndServer || e.Mode == side))
            {
                foreach (var provider in entry.Providers.Count > 0 ? entry.Providers : [Envoy])
                {
                    if (entry.Disabled)
                    {
                        providers.Remove(provider);
                    }
                    else
                    {
                        providers[provider] = entry.Filter;
                    }
                }
            }
        }
        var logs = new List<AccessLog>();
        foreach (var (name, condition) in providers)
        {
            if (mesh.Telemetry.Providers.GetValueOrDefault(name) is FileAccessLogProvider file)
            {
                logs.Add(FileLog(file.Path, new MeshTelemetry(file.Path, file.Encoding, file.Format), condition));
            }
            else if (name == Envoy)
            {
                // The built-in provider: Envoy's file log to meshConfig's file, else the proxy's output, in the mesh's format.
                logs.Add(FileLog(mesh.Telemetry.AccessLogFile ?? "/dev/stdout", mesh.Telemetry, condition));
            }
            else
            {
                snapshot.Warn($"proxy {node.Id}: access log provider '{name}' is not '{Envoy}' nor an envoyFileAccessLog provider of meshConfig extensionProviders; nothing is logged to it");
            }
        }
        return logs;
    }

    private static AccessLog FileLog(string path, MeshTelemetry format, AccessLogCondition? condition) => new()
    {
        Name = FileLogger,
        Filter = condition is null ? null : Filter(condition),
        TypedConfig = Any.Pack(new FileAccessLog { Path = path, LogFormat = Format(format) }),
    };

    /// <summary>Response-code comparisons as Envoy's status_code_filter (a strict comparison moves the bound by one), joined by and/or.</summary>
    private static AccessLogFilter Filter(AccessLogCondition condition)
    {
        var filters = condition.Comparisons.Select(c => new AccessLogFilter
        {
            StatusCodeFilter = new StatusCodeFilter
            {
                Comparison = c.Op switch
                {
                    ">=" => Compare(ComparisonFilter.Types.Op.Ge, c.Value),
                    ">" => Compare(ComparisonFilter.Types.Op.Ge, c.Value + 1),
                    "<=" => Compare(ComparisonFilter.Types.Op.Le, c.Value),
                    "<" => Compare(ComparisonFilter.Types.Op.Le, c.Value - 1),
                    _ => Compare(ComparisonFilter.Types.Op.Eq, c.Value),
                },
            },
        }).ToList();
        if (filters.Count == 1)
        {
            return filters[0];
        }
        return condition.All ? new AccessLogFilter { AndFilter = new AndFilter { Filters = { filters } } } : new AccessLogFilter { OrFilter = new OrFilter { Filters = { filters } } };
    }

    private static ComparisonFilter Compare(ComparisonFilter.Types.Op op, int value) => new()
    {
        Op = op,
        Value = new Envoy.Config.Core.V3.RuntimeUInt32 { DefaultValue = (uint)Math.Max(0, value), RuntimeKey = "access_log.filter.status" },
    };

    private static SubstitutionFormatString Format(MeshTelemetry telemetry)
    {
        if (telemetry.Encoding == AccessLogEncoding.Text)
        {
            // Istio appends the newline a custom text format lacks.
            var text = telemetry.Format is { } custom ? (custom.EndsWith('\n') ? custom : custom + "\n") : IstioTextFormat;
            return new SubstitutionFormatString { TextFormatSource = new DataSource { InlineString = text } };
        }
        var json = new Struct();
        if (telemetry.Format is { } format)
        {
            // Validated when the control plane starts: a JSON object of string values.
            foreach (var property in System.Text.Json.JsonDocument.Parse(format).RootElement.EnumerateObject())
            {
                json.Fields[property.Name] = Value.ForString(property.Value.GetString());
            }
        }
        else
        {
            foreach (var (key, op) in IstioJsonFields)
            {
                json.Fields[key] = Value.ForString(op);
            }
        }
        return new SubstitutionFormatString { JsonFormat = json };
    }
}
