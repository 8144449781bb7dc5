using Bowline.ControlPlane.Config;

namespace Bowline.ControlPlane.Tests.Config;

/// <summary>Istio's mesh config read from the istio ConfigMap of istio-system (data.mesh).</summary>
public sealed class MeshConfigMapTests
{
    private static string ConfigMap(string mesh, string name = "istio", string ns = "istio-system") => $"""
        apiVersion: v1
        kind: ConfigMap
        metadata: {"{"}name: {name}, namespace: {ns}{"}"}
        data:
          mesh: |
        {ValidationRows.Indent(mesh, "    ")}
        """;

    public static TheoryData<string, string, string?> Meshes => new()
    {
        { "access log settings", "accessLogFile: /dev/stdout\naccessLogEncoding: JSON\naccessLogFormat: '{\"code\": \"%RESPONSE_CODE%\"}'", null },
        { "an encoding Istio does not have", "accessLogEncoding: XML", "data.mesh.accessLogEncoding" },
        { "a JSON format that is no object", "accessLogEncoding: JSON\naccessLogFormat: '%RESPONSE_CODE%'", "data.mesh.accessLogFormat" },
        { "an opentelemetry provider over gRPC", "extensionProviders: [{name: otel, opentelemetry: {service: otel.ns.svc.cluster.local, port: 4317, grpc: {timeout: 2s, initialMetadata: [{name: a, value: b}]}}}]", null },
        { "an opentelemetry provider over HTTP", "extensionProviders: [{name: otel, opentelemetry: {service: otel.ns.svc.cluster.local, port: 4318, http: {path: v1/traces}}}]", null },
        { "an opentelemetry provider without a port", "extensionProviders: [{name: otel, opentelemetry: {service: otel.ns.svc.cluster.local}}]", "data.mesh.extensionProviders[0].opentelemetry.port" },
        { "grpc and http together", "extensionProviders: [{name: otel, opentelemetry: {service: o, port: 1, http: {}, grpc: {}}}]", "data.mesh.extensionProviders[0].opentelemetry.grpc" },
        { "a resource detector", "extensionProviders: [{name: otel, opentelemetry: {service: o, port: 1, resourceDetectors: {environment: {}}}}]", "data.mesh.extensionProviders[0].opentelemetry.resourceDetectors" },
        { "a zipkin provider", "extensionProviders: [{name: z, zipkin: {service: zipkin, port: 9411}}]", "data.mesh.extensionProviders[0].zipkin" },
        { "a provider of no kind", "extensionProviders: [{name: x}]", "data.mesh.extensionProviders[0].name" },
        { "a provider of two kinds", "extensionProviders: [{name: x, prometheus: {}, envoyFileAccessLog: {path: /dev/stdout}}]", "data.mesh.extensionProviders[0].name" },
        { "two providers of one name", "extensionProviders: [{name: x, prometheus: {}}, {name: x, prometheus: {}}]", "data.mesh.extensionProviders[1].name" },
        { "a file access log provider", "extensionProviders: [{name: f, envoyFileAccessLog: {path: /dev/stdout, logFormat: {text: '%RESPONSE_CODE%'}}}]", null },
        { "a file log of text and labels", "extensionProviders: [{name: f, envoyFileAccessLog: {path: /dev/stdout, logFormat: {text: x, labels: {a: b}}}}]", "data.mesh.extensionProviders[0].envoyFileAccessLog.logFormat" },
        { "default providers that exist", "extensionProviders: [{name: otel, opentelemetry: {service: o, port: 1}}]\ndefaultProviders: {tracing: [otel], accessLogging: [envoy], metrics: [prometheus]}", null },
        { "a default tracing provider not defined", "defaultProviders: {tracing: [jaeger]}", "data.mesh.defaultProviders.tracing" },
        { "a default access log provider not defined", "defaultProviders: {accessLogging: [otel-als]}", "data.mesh.defaultProviders.accessLogging" },
        { "trace sampling", "defaultConfig: {tracing: {sampling: 10, maxPathTagLength: 128}}", null },
        { "proxy custom tags", "defaultConfig: {tracing: {custom_tags: {team: {literal: {value: books}}, stage: {environment: {name: STAGE, defaultValue: dev}}}}}", null },
        { "a proxy custom tag of two kinds", "defaultConfig: {tracing: {customTags: {team: {literal: {value: a}, header: {name: b}}}}}", "data.mesh.defaultConfig.tracing.customTags.team" },
        { "trace sampling over 100", "defaultConfig: {tracing: {sampling: 101}}", "data.mesh.defaultConfig.tracing.sampling" },
        { "a MeshConfig field Bowline does not apply", "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\nenablePrometheusMerge: true", null },
        { "a ProxyConfig field Bowline does not apply", "defaultConfig: {holdApplicationUntilProxyStarts: true}", null },
        { "a misspelt field", "acessLogFile: /dev/stdout", "data.mesh.acessLogFile" },
    };

    [Theory]
    [MemberData(nameof(Meshes))]
    public void Parse_MeshConfig_FollowsIstiosShape(string rule, string mesh, string? errorField) =>
        ValidationRows.Check("mesh.yaml", ConfigMap(mesh), rule, errorField);

    [Fact]
    public void Parse_FullMeshConfig_GivesItsTelemetry()
    {
        var parsed = ConfigFileParser.Parse("mesh.yaml", ConfigMap("""
            accessLogFile: /dev/stdout
            extensionProviders:
            - name: otel
              opentelemetry:
                service: observability/otel.observability.svc.cluster.local
                port: 4318
                maxTagLength: 64
                http: {path: /v1/traces, timeout: 5s, headers: [{name: authorization, value: token}]}
            - name: logs
              envoyFileAccessLog: {path: /var/log/a.json, logFormat: {labels: {code: '%RESPONSE_CODE%'}}}
            defaultProviders: {tracing: [otel], accessLogging: [logs]}
            defaultConfig: {tracing: {sampling: 12.5}}
            """));

        Assert.DoesNotContain(parsed.Diagnostics, d => d.Severity == DiagnosticSeverity.Error);
        var map = Assert.IsType<MeshConfigMap>(Assert.Single(parsed.Resources));
        var telemetry = map.Apply(MeshTelemetry.Off);
        Assert.Equal("/dev/stdout", telemetry.AccessLogFile);
        Assert.Equal(["otel"], telemetry.DefaultTracing);
        Assert.Equal(["logs"], telemetry.DefaultAccessLogging);
        Assert.Equal(12.5, telemetry.TraceSampling);
        var otel = Assert.IsType<OpenTelemetryProvider>(telemetry.Providers["otel"]);
        Assert.Equal(("observability/otel.observability.svc.cluster.local", 4318, 64, "/v1/traces", TimeSpan.FromSeconds(5)), (otel.Service, otel.Port, otel.MaxTagLength, otel.HttpPath, otel.Timeout));
        Assert.Equal([new KeyValuePair<string, string>("authorization", "token")], otel.Headers);
        var logs = Assert.IsType<FileAccessLogProvider>(telemetry.Providers["logs"]);
        Assert.Equal((AccessLogEncoding.Json, """{"code":"%RESPONSE_CODE%"}"""), (logs.Encoding, logs.Format));
    }

    [Fact]
    public void Parse_AnErrorInsideDataMesh_NamesItsLineInTheFile()
    {
        var parsed = ConfigFileParser.Parse("mesh.yaml", ConfigMap("accessLogFile: /dev/stdout\nacessLogEncoding: JSON"));

        var error = Assert.Single(parsed.Diagnostics, d => d.Severity == DiagnosticSeverity.Error);
        // Line 1 apiVersion, ... line 5 "mesh: |", line 6 accessLogFile, line 7 the typo.
        Assert.Equal(7, error.Line);
        Assert.Empty(parsed.Resources);
    }

    [Fact]
    public void Parse_InvalidYamlInDataMesh_IsAnError()
    {
        var parsed = ConfigFileParser.Parse("mesh.yaml", ConfigMap("accessLogFile: [unclosed"));

        Assert.Contains(parsed.Diagnostics, d => d.Severity == DiagnosticSeverity.Error && d.Message.Contains("data.mesh is not valid YAML", StringComparison.Ordinal));
        Assert.Empty(parsed.Resources);
    }

    [Fact]
    public void Parse_OtherConfigMaps_AreNotBowlines_AndSayNothing()
    {
        var parsed = ConfigFileParser.Parse("app.yaml", ConfigMap("anything: at all", name: "app-settings", ns: "default"));

        Assert.Empty(parsed.Resources);
        Assert.Empty(parsed.Diagnostics);
    }

    [Fact]
    public void MeshConfig_OptionsThenConfigMap_TheConfigMapWinsWhereItSpeaks()
    {
        var parsed = ConfigFileParser.Parse("mesh.yaml", ConfigMap("accessLogEncoding: JSON"));
        var config = new MeshConfig(parsed.Resources, 1).WithTelemetry(new MeshTelemetry("/var/log/options.log"));

        Assert.Equal(("/var/log/options.log", AccessLogEncoding.Json), (config.Telemetry.AccessLogFile, config.Telemetry.Encoding));
        // A later change of generation keeps the same options under the ConfigMap.
        Assert.Equal(config.Telemetry, config.WithSecurity(new MeshSecurity(true, "cluster.local")).Telemetry);
    }
}
