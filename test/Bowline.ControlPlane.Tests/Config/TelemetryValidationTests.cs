using Bowline.ControlPlane.Config;

namespace Bowline.ControlPlane.Tests.Config;

/// <summary>Istio's Telemetry resource as Bowline reads it: accessLogging and metrics applied, tracing warned about, the rest refused by name.</summary>
public sealed class TelemetryValidationTests
{
    public static TheoryData<string, string, string?> Specs => new()
    {
        { "the envoy provider", "accessLogging: [{providers: [{name: envoy}]}]", null },
        { "no provider (the default)", "accessLogging: [{}]", null },
        { "an undefined provider", "accessLogging: [{providers: [{name: otel}]}]", "spec.accessLogging[0].providers[0].name" },
        { "disabled", "accessLogging: [{disabled: true}]", null },
        { "client mode", "accessLogging: [{match: {mode: CLIENT}}]", null },
        { "unknown mode", "accessLogging: [{match: {mode: BOTH}}]", "spec.accessLogging[0].match.mode" },
        { "a response code filter", "accessLogging: [{filter: {expression: 'response.code >= 400'}}]", null },
        { "an and of comparisons", "accessLogging: [{filter: {expression: 'response.code >= 400 && response.code < 500'}}]", null },
        { "CEL beyond response codes", "accessLogging: [{filter: {expression: 'response.duration > 1000'}}]", "spec.accessLogging[0].filter.expression" },
        { "response.code < 0 matches nothing", "accessLogging: [{filter: {expression: 'response.code < 0'}}]", "spec.accessLogging[0].filter.expression" },
        { "mixed && and ||", "accessLogging: [{filter: {expression: 'response.code == 1 && response.code == 2 || response.code == 3'}}]", "spec.accessLogging[0].filter.expression" },
        { "targetRefs", "targetRefs: [{kind: Gateway, name: gw}]\naccessLogging: [{}]", "spec.targetRefs" },
        { "metrics with the prometheus provider", "metrics: [{providers: [{name: prometheus}]}]", null },
        { "metrics disabled", "metrics: [{overrides: [{disabled: true}]}]", null },
        { "metrics disabled on the server side", "metrics: [{providers: [{name: prometheus}], overrides: [{match: {metric: ALL_METRICS, mode: SERVER}, disabled: true}]}]", null },
        { "one metric disabled is a warning", "metrics: [{overrides: [{match: {metric: REQUEST_COUNT}, disabled: true}]}]", null },
        { "an undefined metrics provider", "metrics: [{providers: [{name: stackdriver}]}]", "spec.metrics[0].providers[0].name" },
        { "an unknown metrics mode", "metrics: [{overrides: [{match: {mode: BOTH}, disabled: true}]}]", "spec.metrics[0].overrides[0].match.mode" },
        { "an unknown metrics field", "metrics: [{overrides: [{disable: true}]}]", "spec.metrics[0].overrides[0].disable" },
        { "a selector", "selector: {matchLabels: {app: reviews}}\naccessLogging: [{}]", null },
    };

    [Theory]
    [MemberData(nameof(Specs))]
    public void Parse_Telemetry_FollowsIstiosShape(string rule, string spec, string? errorField) =>
        ValidationRows.Check("telemetry.yaml", ValidationRows.Resource("telemetry.istio.io/v1", "Telemetry", spec), rule, errorField);

    [Fact]
    public void Parse_OneMetricOrTagOverrides_AreWarnedAboutAsNotApplied_TracingToo()
    {
        var parsed = ConfigFileParser.Parse("telemetry.yaml", ValidationRows.Resource("telemetry.istio.io/v1", "Telemetry",
            "metrics: [{overrides: [{match: {metric: REQUEST_COUNT}, disabled: true}, {tagOverrides: {x: {value: y}}}]}]\ntracing: [{randomSamplingPercentage: 10}]"));

        Assert.Contains(parsed.Diagnostics, d => d is { Severity: DiagnosticSeverity.Warning, Field: "spec.metrics[0].overrides[0].match.metric" });
        Assert.Contains(parsed.Diagnostics, d => d is { Severity: DiagnosticSeverity.Warning, Field: "spec.metrics[0].overrides[1].tagOverrides" });
        Assert.Contains(parsed.Diagnostics, d => d is { Severity: DiagnosticSeverity.Warning, Field: "spec.tracing" });
    }
}
