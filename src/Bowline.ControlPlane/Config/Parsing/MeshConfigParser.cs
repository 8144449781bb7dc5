using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>
/// Istio's mesh config, where an Istio install keeps it: the <c>v1 ConfigMap</c> <c>istio</c> in <c>istio-system</c>,
/// whose <c>data.mesh</c> is the MeshConfig as YAML. Bowline applies its telemetry: the access log settings,
/// <c>extensionProviders</c> (<c>opentelemetry</c>, <c>envoyFileAccessLog</c>, <c>prometheus</c>),
/// <c>defaultProviders</c>, and <c>defaultConfig.tracing</c>'s sampling. Other MeshConfig fields Istio defines are
/// reported as not applied; a field Istio does not define is an error, so a typo is not silently ignored. Any other
/// ConfigMap is not Bowline's and is ignored.
/// </summary>
internal static class MeshConfigParser
{
    public const string Name = "istio";

    public static MeshResource? Parse(ResourceMeta meta, FieldReader map, ParseContext context)
    {
        var dataLine = map.Has("data") ? map.Map("data")?.LineOf("mesh") ?? 0 : 0;
        var data = map.StringMap("data");
        map.Skip("binaryData");
        map.Bool("immutable");
        if (meta.Name != Name || meta.Namespace != MeshSecurity.RootNamespace)
        {
            return null;
        }
        foreach (var key in data.Keys.Where(k => k != "mesh"))
        {
            map.Warning("data", $"data.{key} is not used by Bowline (it reads data.mesh only); it is ignored");
        }
        if (!data.TryGetValue("mesh", out var mesh))
        {
            map.Warning("data", "has no data.mesh: the control plane's own options stay in force");
            return new MeshConfigMap(meta);
        }
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(mesh));
        }
        catch (YamlException e)
        {
            map.Error("data", $"data.mesh is not valid YAML (line {e.Start.Line} of it): {e.InnerException?.Message ?? e.Message}; the last good mesh config keeps serving");
            return null;
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
        {
            return new MeshConfigMap(meta);
        }
        if (stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            map.Error("data", "data.mesh must be a YAML mapping of MeshConfig fields (accessLogFile: /dev/stdout, ...)");
            return null;
        }
        // The embedded document's lines count from data.mesh's value: a block scalar (mesh: |) starts on the next line.
        var offset = context.LineOffset;
        context.LineOffset = dataLine;
        try
        {
            return Read(meta, new FieldReader(root, "data.mesh", context));
        }
        finally
        {
            context.LineOffset = offset;
        }
    }

    private static MeshConfigMap? Read(ResourceMeta meta, FieldReader mesh)
    {
        var before = mesh.ErrorCount;
        var file = mesh.String("accessLogFile");
        AccessLogEncoding? encoding = mesh.String("accessLogEncoding") switch
        {
            null => null,
            "TEXT" => AccessLogEncoding.Text,
            "JSON" => AccessLogEncoding.Json,
            var other => Invalid(mesh, "accessLogEncoding", $"'{other}' must be TEXT or JSON"),
        };
        var format = mesh.String("accessLogFormat");
        if (encoding == AccessLogEncoding.Json && format is not null && !AccessLogFormats.IsJsonObject(format))
        {
            mesh.Error("accessLogFormat", "with accessLogEncoding JSON it must be a JSON object of key to format string, e.g. {\"code\": \"%RESPONSE_CODE%\"}");
        }
        if (mesh.Bool("enableTracing") == true)
        {
            mesh.Warning("enableTracing", "alone traces nothing in Bowline (Istio's legacy bootstrap tracer is Zipkin's); name an opentelemetry provider in defaultProviders.tracing or a Telemetry resource");
        }

        double? sampling = null;
        int? maxPathTagLength = null;
        IReadOnlyList<TracingTag>? customTags = null;
        if (mesh.Map("defaultConfig") is { } proxy)
        {
            if (proxy.Map("tracing") is { } tracing)
            {
                sampling = tracing.Double("sampling");
                if (sampling is < 0 or > 100)
                {
                    tracing.Error("sampling", $"{sampling} is not a percentage (0 to 100)");
                }
                maxPathTagLength = tracing.Int("maxPathTagLength", min: 0);
                foreach (var tracer in new[] { "zipkin", "lightstep", "datadog", "stackdriver", "openCensusAgent", "tlsSettings" }.Where(tracing.Has))
                {
                    tracing.Warning(tracer, "is not applied: Bowline traces with meshConfig extensionProviders (opentelemetry), not ProxyConfig's tracer settings");
                    tracing.Skip(tracer);
                }
                foreach (var key in new[] { "custom_tags", "customTags" }.Where(tracing.Has))
                {
                    // Protobuf's JSON names both spellings; Istio's docs write custom_tags.
                    customTags = [.. tracing.Entries(key, TelemetryParser.CustomTag).Where(t => t.Value is not null).Select(t => t.Value! with { Name = t.Key })];
                }
                tracing.Bool("enableIstioTags");
                tracing.Finish();
            }
            foreach (var key in ProxyConfigFields.Where(proxy.Has))
            {
                proxy.Warning(key, "is a ProxyConfig setting Bowline does not apply; it is ignored");
                proxy.Skip(key);
            }
            proxy.Finish();
        }

        var providers = new Dictionary<string, ExtensionProvider>(StringComparer.Ordinal);
        foreach (var entry in mesh.MapList("extensionProviders"))
        {
            if (Provider(entry) is { } provider && !providers.TryAdd(provider.Name, provider))
            {
                entry.Error("name", $"extension provider '{provider.Name}' is defined twice; names must be unique");
            }
        }

        IReadOnlyList<string> defaultTracing = [];
        IReadOnlyList<string> defaultLogging = [];
        if (mesh.Map("defaultProviders") is { } defaults)
        {
            defaultTracing = defaults.StringList("tracing");
            defaultLogging = defaults.StringList("accessLogging");
            foreach (var name in defaults.StringList("metrics").Where(n => n != TelemetryParser.PrometheusProvider && !(providers.GetValueOrDefault(n) is PrometheusProvider)))
            {
                defaults.Error("metrics", $"'{name}' is not a metrics provider Bowline has: metrics are Istio's standard metrics through the built-in '{TelemetryParser.PrometheusProvider}' provider");
            }
            foreach (var name in defaultTracing.Where(n => providers.GetValueOrDefault(n) is not OpenTelemetryProvider))
            {
                defaults.Error("tracing", $"'{name}' is not an opentelemetry provider of extensionProviders; define it there (opentelemetry: {{service: ..., port: 4317}})");
            }
            foreach (var name in defaultLogging.Where(n => n != TelemetryParser.EnvoyProvider && providers.GetValueOrDefault(n) is not FileAccessLogProvider))
            {
                defaults.Error("accessLogging", $"'{name}' is not an access log provider: use the built-in '{TelemetryParser.EnvoyProvider}' or an envoyFileAccessLog provider of extensionProviders");
            }
            defaults.Finish();
        }
        foreach (var key in MeshConfigFields.Where(mesh.Has))
        {
            mesh.Warning(key, "is a MeshConfig setting Bowline does not read from the mesh config; it is ignored (see docs/telemetry.md for what is applied)");
            mesh.Skip(key);
        }
        mesh.Finish();
        if (mesh.ErrorCount != before)
        {
            return null;
        }
        return new MeshConfigMap(meta)
        {
            AccessLogFile = file is { Length: > 0 } ? file : null,
            AccessLogEncoding = encoding,
            AccessLogFormat = format,
            Providers = providers,
            DefaultTracing = defaultTracing,
            DefaultAccessLogging = defaultLogging,
            TraceSampling = sampling,
            MaxPathTagLength = maxPathTagLength,
            ProxyCustomTags = customTags,
        };
    }

    /// <summary>The built-in metrics provider, also definable by name (Istio's <c>prometheus: {}</c>).</summary>
    private sealed record PrometheusProvider(string Name) : ExtensionProvider(Name);

    private static ExtensionProvider? Provider(FieldReader entry)
    {
        var name = entry.String("name", required: true);
        ExtensionProvider? provider = null;
        var kinds = 0;
        if (entry.Map("opentelemetry") is { } otel)
        {
            kinds++;
            provider = OpenTelemetry(name ?? "", otel);
        }
        if (entry.Map("envoyFileAccessLog") is { } fileLog)
        {
            kinds++;
            provider = FileLog(name ?? "", fileLog);
        }
        if (entry.Has("prometheus"))
        {
            kinds++;
            entry.Map("prometheus")?.Finish();
            provider = new PrometheusProvider(name ?? "");
        }
        foreach (var (kind, fix) in UnsupportedProviders.Where(p => entry.Has(p.Kind)))
        {
            kinds++;
            entry.Error(kind, $"provider kind {kind} is not supported by Bowline; {fix}");
            entry.Skip(kind);
        }
        entry.Finish();
        if (kinds != 1 && name is not null)
        {
            entry.Error("name", kinds == 0
                ? $"extension provider '{name}' names no provider kind; give one of opentelemetry, envoyFileAccessLog or prometheus"
                : $"extension provider '{name}' gives {kinds} provider kinds; give exactly one");
            return null;
        }
        return name is null ? null : provider;
    }

    private static OpenTelemetryProvider? OpenTelemetry(string name, FieldReader otel)
    {
        var service = otel.String("service", required: true);
        var port = otel.Int("port", required: true, min: 1, max: 65535);
        var maxTagLength = otel.Int("maxTagLength", min: 0);
        string? path = null;
        TimeSpan? timeout = null;
        var headers = new List<KeyValuePair<string, string>>();
        var http = otel.Map("http");
        if (http is not null)
        {
            path = http.String("path") ?? "/v1/traces";
            if (!path.StartsWith('/'))
            {
                path = "/" + path;
            }
            timeout = http.Duration("timeout");
            headers.AddRange(Headers(http, "headers"));
            http.Finish();
        }
        if (otel.Map("grpc") is { } grpc)
        {
            if (http is not null)
            {
                grpc.Error("grpc and http are exclusive: give one (grpc is the default)");
            }
            timeout = grpc.Duration("timeout");
            headers.AddRange(Headers(grpc, "initialMetadata"));
            grpc.Finish();
        }
        foreach (var key in new[] { "resourceDetectors", "dynatraceSampler", "serviceAttributeEnrichment" }.Where(otel.Has))
        {
            otel.Error(key, $"{key} is not supported by Bowline's tracer (spans carry service.name only, sampling is the mesh's); remove it");
            otel.Skip(key);
        }
        otel.Finish();
        if (service is null || port is null)
        {
            return null;
        }
        return new OpenTelemetryProvider(name, service, port.Value) { MaxTagLength = maxTagLength, HttpPath = path, Timeout = timeout, Headers = headers };
    }

    private static IEnumerable<KeyValuePair<string, string>> Headers(FieldReader owner, string key)
    {
        var result = new List<KeyValuePair<string, string>>();
        foreach (var header in owner.MapList(key))
        {
            var name = header.String("name", required: true);
            var value = header.String("value");
            if (header.Has("envName"))
            {
                header.Error("envName", "a header value from the control plane's environment is not supported; give value");
                header.Skip("envName");
            }
            header.Finish();
            if (name is not null && value is not null)
            {
                result.Add(new(name, value));
            }
        }
        return result;
    }

    private static FileAccessLogProvider? FileLog(string name, FieldReader log)
    {
        var path = log.String("path", required: true);
        var encoding = AccessLogEncoding.Text;
        string? format = null;
        if (log.Map("logFormat") is { } logFormat)
        {
            var text = logFormat.String("text");
            var labels = logFormat.StringMap("labels");
            if (logFormat.Has("omitEmptyValues"))
            {
                logFormat.Warning("omitEmptyValues", "is not applied: empty values are written as '-', as Envoy's default");
                logFormat.Bool("omitEmptyValues");
            }
            logFormat.Finish();
            if (text is not null && labels.Count > 0)
            {
                logFormat.Error("text and labels are exclusive: give a text format or JSON labels");
            }
            else if (labels.Count > 0)
            {
                encoding = AccessLogEncoding.Json;
                format = System.Text.Json.JsonSerializer.Serialize(labels, MeshConfigJson.Default.IReadOnlyDictionaryStringString);
            }
            else
            {
                format = text;
            }
        }
        log.Finish();
        return path is null ? null : new FileAccessLogProvider(name, path, encoding, format);
    }

    private static AccessLogEncoding? Invalid(FieldReader reader, string key, string message)
    {
        reader.Error(key, message);
        return null;
    }

    private static readonly (string Kind, string Fix)[] UnsupportedProviders =
    [
        ("zipkin", "send spans with an opentelemetry provider (Zipkin, Jaeger and Tempo all take OTLP)"),
        ("datadog", "send spans with an opentelemetry provider to an OpenTelemetry collector"),
        ("skywalking", "send spans with an opentelemetry provider to an OpenTelemetry collector"),
        ("lightstep", "send spans with an opentelemetry provider (Istio deprecated lightstep too)"),
        ("stackdriver", "send spans with an opentelemetry provider to an OpenTelemetry collector"),
        ("envoyExtAuthzHttp", "external authorization is not built yet"),
        ("envoyExtAuthzGrpc", "external authorization is not built yet"),
        ("envoyHttpAls", "log to a file with envoyFileAccessLog"),
        ("envoyTcpAls", "log to a file with envoyFileAccessLog"),
        ("envoyOtelAls", "log to a file with envoyFileAccessLog"),
        ("sds", "certificates come from Bowline's CA"),
    ];

    /// <summary>Istio's MeshConfig fields Bowline takes elsewhere (its options, its CA) or not at all.</summary>
    private static readonly string[] MeshConfigFields =
    [
        "proxyListenPort", "proxyInboundListenPort", "proxyHttpPort", "connectTimeout", "protocolDetectionTimeout", "tcpKeepalive",
        "ingressClass", "ingressService", "ingressControllerMode", "ingressSelector", "enableEnvoyAccessLogService", "disableEnvoyListenerLog",
        "outboundTrafficPolicy", "inboundTrafficPolicy", "configSources", "enableAutoMtls", "trustDomain", "trustDomainAliases", "caCertificates",
        "defaultServiceExportTo", "defaultVirtualServiceExportTo", "defaultDestinationRuleExportTo", "rootNamespace", "localityLbSetting",
        "dnsRefreshRate", "h2UpgradePolicy", "inboundClusterStatName", "outboundClusterStatName", "certificates", "serviceSettings",
        "enablePrometheusMerge", "verifyCertificateAtClient", "ca", "discoverySelectors", "pathNormalization", "defaultHttpRetryPolicy",
        "meshMTLS", "tlsDefaults", "serviceScopeConfigs", "thriftConfig", "mixerCheckServer", "mixerReportServer", "disablePolicyChecks",
        "policyCheckFailOpen", "sidecarToTelemetrySessionAffinity", "enableClientSidePolicyCheck", "sdsUdsPath", "sdsRefreshDelay",
    ];

    /// <summary>Istio's ProxyConfig fields under <c>defaultConfig</c> other than <c>tracing</c>.</summary>
    private static readonly string[] ProxyConfigFields =
    [
        "configPath", "binaryPath", "serviceCluster", "drainDuration", "parentShutdownDuration", "discoveryAddress", "discoveryRefreshDelay",
        "zipkinAddress", "statsdUdpAddress", "envoyMetricsServiceAddress", "proxyAdminPort", "availabilityZone", "controlPlaneAuthPolicy",
        "customConfigFile", "statNameLength", "concurrency", "proxyBootstrapTemplatePath", "interceptionMode", "sds", "envoyAccessLogService",
        "envoyMetricsService", "proxyMetadata", "runtimeValues", "statusPort", "extraStatTags", "gatewayTopology", "terminationDrainDuration",
        "meshId", "readinessProbe", "proxyStatsMatcher", "holdApplicationUntilProxyStarts", "caCertificatesPem", "image", "privateKeyProvider",
        "proxyHeaders", "fileFlushInterval", "fileFlushMinSize", "startupProbe",
    ];
}

[System.Text.Json.Serialization.JsonSerializable(typeof(IReadOnlyDictionary<string, string>))]
internal sealed partial class MeshConfigJson : System.Text.Json.Serialization.JsonSerializerContext;
