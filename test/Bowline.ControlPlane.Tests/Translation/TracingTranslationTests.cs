using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Config.Trace.V3;
using Envoy.Extensions.AccessLoggers.File.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using static Bowline.ControlPlane.Tests.Translation.MtlsExpectations;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>Istio's tracing (meshConfig extensionProviders and defaultProviders, Telemetry tracing) on every HTTP connection manager.</summary>
public sealed class TracingTranslationTests
{
    private const string Collector = "otel-collector.observability.svc.cluster.local";

    /// <summary>The OTLP collector as a ServiceEntry of the mesh, as an operator declares one outside the mesh.</summary>
    private const string CollectorEntry = $$"""
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: otel, namespace: observability}
        spec:
          hosts: [{{Collector}}]
          ports: [{number: 4317, name: grpc-otlp, protocol: GRPC}, {number: 4318, name: http-otlp, protocol: HTTP}]
          resolution: STATIC
          endpoints: [{address: 127.0.0.1}]
        """;

    private static string MeshConfigMap(string mesh) => $"""
        apiVersion: v1
        kind: ConfigMap
        metadata: {"{"}name: istio, namespace: istio-system{"}"}
        data:
          mesh: |
        {Bowline.ControlPlane.Tests.Config.ValidationRows.Indent(mesh, "    ")}
        """;

    private const string OtelMesh = $$$"""
        extensionProviders:
        - name: otel
          opentelemetry: {service: {{{Collector}}}, port: 4317}
        - name: otel-http
          opentelemetry: {service: {{{Collector}}}, port: 4318, http: {path: /v1/traces, timeout: 3s, headers: [{name: x-tenant, value: bookinfo}]}}
        defaultProviders:
          tracing: [otel]
        """;

    private static string Telemetry(string ns, string name, string spec) => $"""
        apiVersion: telemetry.istio.io/v1
        kind: Telemetry
        metadata: {"{"}name: {name}, namespace: {ns}{"}"}
        spec:
        {Bowline.ControlPlane.Tests.Config.ValidationRows.Indent(spec, "  ")}
        """;

    private static (HttpConnectionManager Inbound, HttpConnectionManager Outbound, Bowline.ControlPlane.Snapshots.XdsSnapshot Snapshot) Productpage(params string[] yaml)
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(yaml), ProxyNode.From(TestNodes.ProductpageSidecar()));
        return (Resource<Listener>(snapshot, TypeUrls.Listener, IstioNames.VirtualInbound).FilterChains[0].Filters[0].TypedConfig.Unpack<HttpConnectionManager>(),
            Resource<Listener>(snapshot, TypeUrls.Listener, "127.0.0.1_15001").FilterChains[0].Filters[0].TypedConfig.Unpack<HttpConnectionManager>(), snapshot);
    }

    [Fact]
    public void Translate_DefaultProvider_TracesBothSidesThroughTheCollectorsCluster()
    {
        var (inbound, outbound, snapshot) = Productpage(MeshConfigMap(OtelMesh), CollectorEntry);

        foreach (var hcm in new[] { inbound, outbound })
        {
            var tracing = hcm.Tracing;
            Assert.Equal(TracingBuilder.OpenTelemetryTracer, tracing.Provider.Name);
            var otel = tracing.Provider.TypedConfig.Unpack<OpenTelemetryConfig>();
            Assert.Equal($"outbound|4317||{Collector}", otel.GrpcService.EnvoyGrpc.ClusterName);
            Assert.Equal(Collector, otel.GrpcService.EnvoyGrpc.Authority);
            Assert.Equal("productpage.default", otel.ServiceName);
            // Istio's sampling: client and overall 100, random meshConfig's default of 1%.
            Assert.Equal(100, tracing.ClientSampling.Value);
            Assert.Equal(100, tracing.OverallSampling.Value);
            Assert.Equal(1, tracing.RandomSampling.Value);
            Assert.Null(tracing.SpawnUpstreamSpan);
            Assert.Equal(["istio.canonical_revision", "istio.canonical_service", "istio.cluster_id", "istio.mesh_id", "istio.namespace"], tracing.CustomTags.Select(t => t.Tag));
            Assert.Equal(["v1", "productpage", "Kubernetes", "cluster.local", "default"], tracing.CustomTags.Select(t => t.Literal.Value));
            Assert.True(hcm.RequestIdExtension.TypedConfig.Unpack<Envoy.Extensions.RequestId.Uuid.V3.UuidRequestIdConfig>().UseRequestIdForTraceSampling);
        }
        // The workload's own requests arrive on loopback: its sampling decision stands on the outbound side only.
        Assert.Equal(["127.0.0.0/8", "::1/128"], outbound.InternalAddressConfig.CidrRanges.Select(r => $"{r.AddressPrefix}/{r.PrefixLen}"));
        Assert.Null(inbound.InternalAddressConfig);
        Assert.True(snapshot.Get(TypeUrls.Cluster)!.Resources.ContainsKey($"outbound|4317||{Collector}"));
        Assert.Empty(snapshot.Warnings);
    }

    [Fact]
    public void Translate_NoProviderAnywhere_SendsNoTracing()
    {
        var (inbound, outbound, _) = Productpage(CollectorEntry);

        Assert.Null(inbound.Tracing);
        Assert.Null(outbound.Tracing);
        Assert.Null(outbound.RequestIdExtension);
    }

    [Fact]
    public void Translate_TelemetryLayers_MergePerSideAsIstioDoes()
    {
        var (inbound, outbound, _) = Productpage(MeshConfigMap(OtelMesh), CollectorEntry,
            Telemetry("istio-system", "mesh", "tracing: [{randomSamplingPercentage: 50, customTags: {team: {literal: {value: books}}}}]"),
            Telemetry("default", "ns", "tracing: [{match: {mode: SERVER}, disableSpanReporting: true}]"),
            Telemetry("default", "pp", "selector: {matchLabels: {app: productpage}}\ntracing: [{match: {mode: CLIENT}, providers: [{name: otel-http}], useRequestIdForTraceSampling: false, customTags: {user: {header: {name: x-user, defaultValue: anonymous}}}}]"));

        Assert.Null(inbound.Tracing);
        var tracing = outbound.Tracing;
        Assert.Equal(50, tracing.RandomSampling.Value);
        // The workload's tags replace the root's as a whole, as Istio merges them.
        Assert.DoesNotContain(tracing.CustomTags, t => t.Tag == "team");
        var user = Assert.Single(tracing.CustomTags, t => t.Tag == "user");
        Assert.Equal(("x-user", "anonymous"), (user.RequestHeader.Name, user.RequestHeader.DefaultValue));
        var http = tracing.Provider.TypedConfig.Unpack<OpenTelemetryConfig>().HttpService;
        Assert.Equal($"{Collector}/v1/traces", http.HttpUri.Uri);
        Assert.Equal($"outbound|4318||{Collector}", http.HttpUri.Cluster);
        Assert.Equal(TimeSpan.FromSeconds(3), http.HttpUri.Timeout.ToTimeSpan());
        Assert.Equal(("x-tenant", "bookinfo"), (http.RequestHeadersToAdd[0].Header.Key, http.RequestHeadersToAdd[0].Header.Value));
        Assert.False(outbound.RequestIdExtension.TypedConfig.Unpack<Envoy.Extensions.RequestId.Uuid.V3.UuidRequestIdConfig>().UseRequestIdForTraceSampling);
    }

    [Fact]
    public void Translate_Gateway_SpawnsAnUpstreamSpan_AndTrustsNoAddress()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(MeshConfigMap(OtelMesh), CollectorEntry), ProxyNode.From(TestNodes.IngressGateway()));

        var hcms = snapshot.Get(TypeUrls.Listener)!.Resources.Values.Select(r => (Listener)r.Message).SelectMany(l => l.FilterChains)
            .Select(c => c.Filters[0].TypedConfig.Unpack<HttpConnectionManager>()).ToList();
        Assert.NotEmpty(hcms);
        Assert.All(hcms, h => Assert.True(h.Tracing.SpawnUpstreamSpan));
        Assert.All(hcms, h => Assert.Null(h.InternalAddressConfig));
    }

    [Theory]
    [InlineData("defaultProviders: {tracing: [otel]}\nextensionProviders: [{name: otel, opentelemetry: {service: nowhere.example.com, port: 4317}}]", "nowhere.example.com:4317 is not a service port")]
    [InlineData($"defaultProviders: {{tracing: [otel]}}\nextensionProviders: [{{name: otel, opentelemetry: {{service: {Collector}, port: 9999}}}}]", ":9999 is not a service port")]
    [InlineData($"defaultProviders: {{tracing: [otel]}}\nextensionProviders: [{{name: otel, opentelemetry: {{service: elsewhere/{Collector}, port: 4317}}}}]", "is not a service port")]
    public void Translate_ACollectorThatIsNoServicePort_IsAWarning_AndNoTracing(string mesh, string warning)
    {
        var (inbound, outbound, snapshot) = Productpage(MeshConfigMap(mesh), CollectorEntry);

        Assert.Null(inbound.Tracing);
        Assert.Null(outbound.Tracing);
        Assert.Contains(snapshot.Warnings, w => w.Contains(warning, StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_ATelemetryNamingAnUndefinedProvider_IsAWarning()
    {
        var (_, outbound, snapshot) = Productpage(MeshConfigMap(OtelMesh), CollectorEntry, Telemetry("default", "t", "tracing: [{providers: [{name: jaeger}]}]"));

        Assert.Null(outbound.Tracing);
        Assert.Contains(snapshot.Warnings, w => w.Contains("tracing provider 'jaeger' is not an opentelemetry provider", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_MeshSampling_AndIstioTagsOff()
    {
        var (inbound, _, _) = Productpage(MeshConfigMap(OtelMesh + "\ndefaultConfig: {tracing: {sampling: 25, maxPathTagLength: 99}}"), CollectorEntry,
            Telemetry("istio-system", "mesh", "tracing: [{enableIstioTags: false}]"));

        Assert.Equal(25, inbound.Tracing.RandomSampling.Value);
        Assert.Equal(99u, inbound.Tracing.MaxPathTagLength);
        Assert.Empty(inbound.Tracing.CustomTags);
    }

    [Fact]
    public void Translate_ProxyConfigCustomTags_ApplyWhereNoTelemetryGivesAny()
    {
        const string Tags = "\ndefaultConfig: {tracing: {custom_tags: {team: {literal: {value: books}}, user: {header: {name: x-user, defaultValue: anon}}}}}";
        var (inbound, _, _) = Productpage(MeshConfigMap(OtelMesh + Tags), CollectorEntry, Telemetry("istio-system", "mesh", "tracing: [{enableIstioTags: false}]"));
        var (overridden, _, _) = Productpage(MeshConfigMap(OtelMesh + Tags), CollectorEntry,
            Telemetry("istio-system", "mesh", "tracing: [{enableIstioTags: false, customTags: {env: {environment: {name: STAGE}}}}]"));

        Assert.Equal(["team", "user"], inbound.Tracing.CustomTags.Select(t => t.Tag));
        Assert.Equal("books", inbound.Tracing.CustomTags[0].Literal.Value);
        Assert.Equal(("x-user", "anon"), (inbound.Tracing.CustomTags[1].RequestHeader.Name, inbound.Tracing.CustomTags[1].RequestHeader.DefaultValue));
        // A Telemetry's own tags replace them, as in Istio.
        Assert.Equal("STAGE", Assert.Single(overridden.Tracing.CustomTags).Environment.Name);
    }

    [Fact]
    public void Translate_Routes_CarryIstiosOperationNames()
    {
        var (inbound, _, snapshot) = Productpage(File.ReadAllText(TestFiles.Bookinfo("tasks/virtual-service-reviews-v3.yaml")));

        Assert.Equal("productpage.default.svc.cluster.local:9080/*", inbound.RouteConfig.VirtualHosts[0].Routes[0].Decorator.Operation);
        var routes = snapshot.Get(TypeUrls.RouteConfiguration)!.Resources.Values.Select(r => (RouteConfiguration)r.Message).SelectMany(c => c.VirtualHosts).SelectMany(v => v.Routes).ToList();
        Assert.Contains(routes, r => r.Decorator?.Operation == "reviews.default.svc.cluster.local:9080/*");
        Assert.Contains(routes, r => r.Decorator?.Operation == "details.default.svc.cluster.local:9080/*");
    }

    [Fact]
    public void Translate_EnvoyFileAccessLogProvider_LogsToItsPathInItsFormat()
    {
        var mesh = """
            extensionProviders:
            - name: json-log
              envoyFileAccessLog: {path: /var/log/mesh.json, logFormat: {labels: {code: '%RESPONSE_CODE%', path: '%REQ(:PATH)%'}}}
            defaultProviders:
              accessLogging: [json-log]
            """;
        var (inbound, outbound, snapshot) = Productpage(MeshConfigMap(mesh));

        foreach (var hcm in new[] { inbound, outbound })
        {
            var file = Assert.Single(hcm.AccessLog).TypedConfig.Unpack<FileAccessLog>();
            Assert.Equal("/var/log/mesh.json", file.Path);
            Assert.Equal(["code", "path"], file.LogFormat.JsonFormat.Fields.Keys.Order(StringComparer.Ordinal));
        }
        Assert.Empty(snapshot.Warnings);

        var (_, undefined, warned) = Productpage(Telemetry("default", "t", "accessLogging: [{providers: [{name: nowhere}]}]"));
        Assert.Empty(undefined.AccessLog);
        Assert.Contains(warned.Warnings, w => w.Contains("access log provider 'nowhere'", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_MeshConfigMapAccessLogFile_OverridesTheOptions()
    {
        var config = Bookinfo.Index(MeshConfigMap("accessLogFile: /tmp/from-configmap.log\naccessLogEncoding: JSON")).Config.WithTelemetry(new Bowline.ControlPlane.Config.MeshTelemetry("/dev/stdout"));
        var snapshot = MeshTranslator.Translate(new ServiceIndex(config), ProxyNode.From(TestNodes.ProductpageSidecar()));

        var hcm = Resource<Listener>(snapshot, TypeUrls.Listener, IstioNames.VirtualInbound).FilterChains[0].Filters[0].TypedConfig.Unpack<HttpConnectionManager>();
        var file = Assert.Single(hcm.AccessLog).TypedConfig.Unpack<FileAccessLog>();
        Assert.Equal("/tmp/from-configmap.log", file.Path);
        Assert.NotNull(file.LogFormat.JsonFormat);
    }
}
