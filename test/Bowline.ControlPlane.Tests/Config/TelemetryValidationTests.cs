using Bowline.ControlPlane.Config;

namespace Bowline.ControlPlane.Tests.Config;

/// <summary>Istio's Telemetry resource as Bowline reads it: accessLogging and metrics applied, tracing warned about, the rest refused by name.</summary>
public sealed class TelemetryValidationTests
{
    public static TheoryData<string, string, string?> Specs => new()
    {
        { "the envoy provider", "accessLogging: [{providers: [{name: envoy}]}]", null },
        { "no provider (the default)", "accessLogging: [{}]", null },
        { "a provider of meshConfig (resolved at translation)", "accessLogging: [{providers: [{name: otel}]}]", null },
        { "a provider without a name", "accessLogging: [{providers: [{}]}]", "spec.accessLogging[0].providers[0].name" },
        { "tracing with a provider and sampling", "tracing: [{providers: [{name: otel}], randomSamplingPercentage: 12.5}]", null },
        { "tracing sampling over 100", "tracing: [{randomSamplingPercentage: 101}]", "spec.tracing[0].randomSamplingPercentage" },
        { "tracing sampling below 0", "tracing: [{randomSamplingPercentage: -1}]", "spec.tracing[0].randomSamplingPercentage" },
        { "tracing on the client side only", "tracing: [{match: {mode: CLIENT}, disableSpanReporting: true}]", null },
        { "tracing with an unknown mode", "tracing: [{match: {mode: BOTH}}]", "spec.tracing[0].match.mode" },
        { "tracing custom tags of each kind", "tracing: [{customTags: {a: {literal: {value: x}}, b: {environment: {name: HOME, defaultValue: d}}, c: {header: {name: x-user}}}}]", null },
        { "a custom tag of two kinds", "tracing: [{customTags: {a: {literal: {value: x}, header: {name: y}}}}]", "spec.tracing[0].customTags.a" },
        { "a formatter custom tag", "tracing: [{customTags: {a: {formatter: {value: '%REQ(x)%'}}}}]", "spec.tracing[0].customTags.a.formatter" },
        { "tracing without context propagation", "tracing: [{disableContextPropagation: true}]", "spec.tracing[0].disableContextPropagation" },
        { "tracing request-id draw and Istio tags", "tracing: [{useRequestIdForTraceSampling: false, enableIstioTags: false}]", null },
        { "an unknown tracing field", "tracing: [{sampling: 10}]", "spec.tracing[0].sampling" },
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
    public void Parse_OneMetricOrTagOverrides_AreWarnedAboutAsNotApplied()
    {
        var parsed = ConfigFileParser.Parse("telemetry.yaml", ValidationRows.Resource("telemetry.istio.io/v1", "Telemetry",
            "metrics: [{overrides: [{match: {metric: REQUEST_COUNT}, disabled: true}, {tagOverrides: {x: {value: y}}}]}]"));

        Assert.Contains(parsed.Diagnostics, d => d is { Severity: DiagnosticSeverity.Warning, Field: "spec.metrics[0].overrides[0].match.metric" });
        Assert.Contains(parsed.Diagnostics, d => d is { Severity: DiagnosticSeverity.Warning, Field: "spec.metrics[0].overrides[1].tagOverrides" });
    }
}
