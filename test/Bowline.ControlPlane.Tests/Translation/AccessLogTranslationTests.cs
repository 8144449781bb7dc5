using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Listener.V3;
using Envoy.Extensions.AccessLoggers.File.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using static Bowline.ControlPlane.Tests.Translation.MtlsExpectations;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>Istio's meshConfig access log (accessLogFile, accessLogEncoding, accessLogFormat) on every HTTP connection manager.</summary>
public sealed class AccessLogTranslationTests
{
    private static ServiceIndex Index(MeshTelemetry telemetry, params string[] yaml) => new(Bookinfo.Index(yaml).Config.WithTelemetry(telemetry));

    private static (HttpConnectionManager Inbound, HttpConnectionManager Outbound) ProductpageHcms(ServiceIndex index)
    {
        var snapshot = MeshTranslator.Translate(index, ProxyNode.From(TestNodes.ProductpageSidecar()));
        return (Resource<Listener>(snapshot, TypeUrls.Listener, IstioNames.VirtualInbound).FilterChains[0].Filters[0].TypedConfig.Unpack<HttpConnectionManager>(),
            Resource<Listener>(snapshot, TypeUrls.Listener, "127.0.0.1_15001").FilterChains[0].Filters[0].TypedConfig.Unpack<HttpConnectionManager>());
    }

    private static FileAccessLog ProductpageInboundLog(MeshTelemetry telemetry)
    {
        var hcm = ProductpageHcms(Index(telemetry)).Inbound;
        var log = Assert.Single(hcm.AccessLog);
        Assert.Equal("envoy.access_loggers.file", log.Name);
        return log.TypedConfig.Unpack<FileAccessLog>();
    }

    [Fact]
    public void Translate_MeshAccessLogFile_IsIstiosTextFormatOnEveryHcm()
    {
        var telemetry = new MeshTelemetry("/dev/stdout");
        var file = ProductpageInboundLog(telemetry);

        Assert.Equal("/dev/stdout", file.Path);
        Assert.Equal(AccessLogBuilder.IstioTextFormat, file.LogFormat.TextFormatSource.InlineString);
        // The outbound and the gateway HCMs log too.
        var gateway = MeshTranslator.Translate(Index(telemetry), ProxyNode.From(TestNodes.IngressGateway()));
        Assert.All(gateway.Get(TypeUrls.Listener)!.Resources.Values.Select(r => (Listener)r.Message).SelectMany(l => l.FilterChains),
            c => Assert.Single(c.Filters[0].TypedConfig.Unpack<HttpConnectionManager>().AccessLog));
    }

    [Fact]
    public void Translate_JsonEncoding_IsIstiosJsonKeys_OrTheMeshsOwnFormat()
    {
        var istio = ProductpageInboundLog(new MeshTelemetry("/dev/stdout", AccessLogEncoding.Json)).LogFormat.JsonFormat;
        Assert.Equal("%RESPONSE_CODE%", istio.Fields["response_code"].StringValue);
        Assert.Equal(24, istio.Fields.Count);

        var custom = ProductpageInboundLog(new MeshTelemetry("/var/log/mesh.log", AccessLogEncoding.Json, """{"code": "%RESPONSE_CODE%", "who": "%DOWNSTREAM_PEER_URI_SAN%"}""")).LogFormat.JsonFormat;
        Assert.Equal(["code", "who"], custom.Fields.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Translate_CustomTextFormat_GetsItsNewline()
    {
        Assert.Equal("%RESPONSE_CODE% %REQ(:PATH)%\n", ProductpageInboundLog(new MeshTelemetry("/dev/stdout", AccessLogEncoding.Text, "%RESPONSE_CODE% %REQ(:PATH)%")).LogFormat.TextFormatSource.InlineString);
    }

    [Fact]
    public void Translate_NoAccessLogFile_LogsNothing()
    {
        var snapshot = MeshTranslator.Translate(Index(MeshTelemetry.Off), ProxyNode.From(TestNodes.ProductpageSidecar()));

        Assert.Empty(Resource<Listener>(snapshot, TypeUrls.Listener, IstioNames.VirtualInbound).FilterChains[0].Filters[0].TypedConfig.Unpack<HttpConnectionManager>().AccessLog);
    }

    private static string TelemetryYaml(string ns, string spec) => $$"""
        apiVersion: telemetry.istio.io/v1
        kind: Telemetry
        metadata: {name: logs, namespace: {{ns}}}
        spec:
        {{spec}}
        """;

    [Fact]
    public void Translate_RootTelemetryWithTheEnvoyProvider_LogsEverySideToStdout_WithoutAMeshFile()
    {
        var (inbound, outbound) = ProductpageHcms(Index(MeshTelemetry.Off, TelemetryYaml("istio-system", "  accessLogging: [{providers: [{name: envoy}]}]")));

        Assert.Equal("/dev/stdout", Assert.Single(inbound.AccessLog).TypedConfig.Unpack<FileAccessLog>().Path);
        Assert.Single(outbound.AccessLog);
    }

    [Fact]
    public void Translate_TelemetryMetricsDisabled_DropsTheStatsFilterOnThatSideOnly_AndKeepsTheMetadataExchange()
    {
        var defaults = ProductpageHcms(Index(MeshTelemetry.Off));
        var root = ProductpageHcms(Index(MeshTelemetry.Off, TelemetryYaml("istio-system", "  metrics: [{providers: [{name: prometheus}], overrides: [{disabled: true}]}]")));
        // The workload layer turns the client side back on over the root's "all off".
        var layered = ProductpageHcms(Index(MeshTelemetry.Off,
            TelemetryYaml("istio-system", "  metrics: [{overrides: [{disabled: true}]}]"),
            TelemetryYaml("default", "  selector: {matchLabels: {app: productpage}}\n  metrics: [{overrides: [{match: {mode: CLIENT}, disabled: false}]}]").Replace("name: logs", "name: productpage", StringComparison.Ordinal)));

        static bool Stats(HttpConnectionManager hcm) => hcm.HttpFilters.Any(f => f.Name == IstioTelemetryBuilder.StatsFilter);
        static bool Exchange(HttpConnectionManager hcm) => hcm.HttpFilters[0].Name == IstioTelemetryBuilder.MetadataExchangeFilter;
        Assert.Equal((true, true), (Stats(defaults.Inbound), Stats(defaults.Outbound)));
        Assert.Equal((false, false), (Stats(root.Inbound), Stats(root.Outbound)));
        Assert.True(Exchange(root.Inbound) && Exchange(root.Outbound));
        Assert.Equal((false, true), (Stats(layered.Inbound), Stats(layered.Outbound)));
    }

    [Fact]
    public void Translate_NamespaceTelemetryDisabled_OverridesTheMeshFile()
    {
        var (inbound, outbound) = ProductpageHcms(Index(new MeshTelemetry("/dev/stdout"), TelemetryYaml("default", "  accessLogging: [{disabled: true}]")));

        Assert.Empty(inbound.AccessLog);
        Assert.Empty(outbound.AccessLog);
    }

    [Fact]
    public void Translate_WorkloadTelemetryForTheServerSide_WithAResponseCodeFilter()
    {
        var spec = """
              selector: {matchLabels: {app: productpage}}
              accessLogging:
              - match: {mode: SERVER}
                filter: {expression: "response.code >= 400 || response.code == 302"}
            """;
        var (inbound, outbound) = ProductpageHcms(Index(MeshTelemetry.Off, TelemetryYaml("default", spec)));

        Assert.Empty(outbound.AccessLog);
        var filter = Assert.Single(inbound.AccessLog).Filter;
        Assert.Equal(Json<Envoy.Config.Accesslog.V3.AccessLogFilter>("""
            {"orFilter": {"filters": [
              {"statusCodeFilter": {"comparison": {"op": "GE", "value": {"defaultValue": 400, "runtimeKey": "access_log.filter.status"}}}},
              {"statusCodeFilter": {"comparison": {"value": {"defaultValue": 302, "runtimeKey": "access_log.filter.status"}}}}
            ]}}
            """), filter);
    }

    [Fact]
    public void Translate_TelemetryLayersMerge_AsIstios_PerProviderAndSide()
    {
        var root = TelemetryYaml("istio-system", "  accessLogging: [{providers: [{name: envoy}]}]");
        var workload = TelemetryYaml("default", """
              selector: {matchLabels: {app: productpage}}
              accessLogging:
              - {match: {mode: SERVER}, disabled: true}
              - {match: {mode: CLIENT}, filter: {expression: "response.code >= 500"}}
            """);
        var (inbound, outbound) = ProductpageHcms(Index(new MeshTelemetry("/dev/stdout"), root, workload));

        // The workload layer removes the server side and narrows the client side; meshConfig and root add no second logger.
        Assert.Empty(inbound.AccessLog);
        var client = Assert.Single(outbound.AccessLog);
        Assert.Equal(500u, client.Filter.StatusCodeFilter.Comparison.Value.DefaultValue);
    }
}
