using System.Text.RegularExpressions;

namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>
/// Istio's <c>Telemetry</c>: <c>accessLogging</c> (providers, disabled, match.mode, filter.expression) is read and
/// applied; <c>metrics</c> overrides switch the standard metrics off or on per side; <c>tracing</c> (provider, sampling, custom tags, span reporting, the request-id draw) is merged per side;
/// <c>targetRefs</c> is refused (there is no Kubernetes Gateway API here). Provider names are resolved against meshConfig
/// <c>extensionProviders</c> at translation (plus Istio's built-in <c>envoy</c> and <c>prometheus</c>).
/// </summary>
internal static partial class TelemetryParser
{
    /// <summary>Istio's built-in provider: Envoy's file access log to /dev/stdout in the mesh's format.</summary>
    public const string EnvoyProvider = "envoy";

    public static MeshResource? Parse(ResourceMeta meta, FieldReader spec)
    {
        var selector = PolicySelectorParser.Selector(spec);
        if (spec.Has("targetRefs") || spec.Has("targetRef"))
        {
            spec.Error(spec.Has("targetRefs") ? "targetRefs" : "targetRef", "targetRefs name Kubernetes Gateway API resources, which Bowline does not have; select workloads with selector.matchLabels");
        }
        var entries = new List<AccessLogging>();
        foreach (var logging in spec.MapList("accessLogging"))
        {
            var providers = new List<string>();
            foreach (var provider in logging.MapList("providers"))
            {
                var name = provider.String("name", required: true);
                provider.Finish();
                if (name is null)
                {
                    continue;
                }
                // Resolved against meshConfig's extensionProviders at translation, as Istio does: the mesh config may change apart.
                providers.Add(name);
            }
            var disabled = logging.Bool("disabled") ?? false;
            var mode = TelemetryMode.ClientAndServer;
            if (logging.Map("match") is { } match)
            {
                mode = Mode(match);
                match.Finish();
            }
            AccessLogCondition? condition = null;
            if (logging.Map("filter") is { } filter)
            {
                var expression = filter.String("expression", required: true);
                filter.Finish();
                if (expression is not null)
                {
                    condition = Condition(expression);
                    if (condition is null)
                    {
                        filter.Error("expression", $"'{expression}': Bowline translates comparisons of response.code (==, >=, <=, >, <) joined by && or || (e.g. response.code >= 400); other CEL is not supported yet");
                    }
                }
            }
            logging.Finish();
            entries.Add(new AccessLogging(providers, disabled, mode, condition));
        }
        var metrics = new List<MetricsToggle>();
        foreach (var entry in spec.MapList("metrics"))
        {
            foreach (var provider in entry.MapList("providers"))
            {
                if (provider.String("name", required: true) is { } name && name != PrometheusProvider)
                {
                    provider.Error("name", $"provider '{name}' is not defined: Bowline has Istio's built-in '{PrometheusProvider}' provider only");
                }
                provider.Finish();
            }
            if (entry.Has("reportingInterval"))
            {
                entry.Warning("reportingInterval", "is not applied: Bowline's metrics are read at each scrape, there is nothing to flush");
                entry.String("reportingInterval");
            }
            foreach (var @override in entry.MapList("overrides"))
            {
                var mode = TelemetryMode.ClientAndServer;
                var allMetrics = true;
                if (@override.Map("match") is { } match)
                {
                    mode = Mode(match);
                    if (match.String("metric") is { } metric && metric != "ALL_METRICS")
                    {
                        allMetrics = false;
                        match.Warning("metric", $"switching one metric ({metric}) is not applied yet; Bowline switches all of Istio's standard metrics at once (ALL_METRICS)");
                    }
                    if (match.Has("customMetric"))
                    {
                        allMetrics = false;
                        match.Warning("customMetric", "custom metrics are not applied: Bowline reports Istio's standard metrics only");
                        match.String("customMetric");
                    }
                    match.Finish();
                }
                if (@override.Has("tagOverrides"))
                {
                    @override.Warning("tagOverrides", "is not applied yet: Bowline reports Istio's standard labels");
                    @override.Map("tagOverrides");
                }
                var disabled = @override.Bool("disabled");
                @override.Finish();
                if (allMetrics && disabled is { } off)
                {
                    metrics.Add(new MetricsToggle(mode, off));
                }
            }
            entry.Finish();
        }
        var tracing = new List<TracingEntry>();
        foreach (var entry in spec.MapList("tracing"))
        {
            if (Tracing(entry) is { } parsed)
            {
                tracing.Add(parsed);
            }
        }
        return new Telemetry(meta, selector, entries) { Metrics = metrics, Tracing = tracing };
    }

    /// <summary>One <c>tracing</c> entry, validated as Istio validates it (a percentage of 0 to 100, tags of one kind each).</summary>
    private static TracingEntry? Tracing(FieldReader entry)
    {
        var before = entry.ErrorCount;
        string? provider = null;
        var providers = entry.MapList("providers");
        foreach (var p in providers)
        {
            var name = p.String("name", required: true);
            p.Finish();
            provider ??= name;
        }
        if (providers.Count > 1)
        {
            entry.Warning("providers", $"names {providers.Count} providers; as in Istio, only the first ({provider}) is used");
        }
        var mode = TelemetryMode.ClientAndServer;
        if (entry.Map("match") is { } match)
        {
            mode = Mode(match);
            match.Finish();
        }
        var percentage = entry.Double("randomSamplingPercentage");
        if (percentage is < 0 or > 100)
        {
            entry.Error("randomSamplingPercentage", $"{percentage} must be a percentage from 0 to 100");
        }
        List<TracingTag>? tags = null;
        if (entry.Has("customTags"))
        {
            tags = [.. entry.Entries("customTags", CustomTag).Where(t => t.Value is not null).Select(t => t.Value! with { Name = t.Key })];
        }
        if (entry.Has("disableContextPropagation"))
        {
            entry.Error("disableContextPropagation", "is not supported yet: Bowline always propagates the trace context it reads; remove it");
            entry.Skip("disableContextPropagation");
        }
        var result = new TracingEntry(provider, mode)
        {
            DisableSpanReporting = entry.Bool("disableSpanReporting"),
            RandomSamplingPercentage = percentage,
            CustomTags = tags,
            UseRequestIdForTraceSampling = entry.Bool("useRequestIdForTraceSampling"),
            EnableIstioTags = entry.Bool("enableIstioTags"),
        };
        entry.Finish();
        return entry.ErrorCount == before ? result : null;
    }

    /// <summary>One custom tag (literal, environment or header), as Telemetry and ProxyConfig both write it; its name is the caller's.</summary>
    internal static TracingTag? CustomTag(FieldReader? tag, string path)
    {
        if (tag is null)
        {
            return null;
        }
        TracingTag? result = null;
        var kinds = 0;
        if (tag.Map("literal") is { } literal)
        {
            kinds++;
            result = new TracingTag("", literal.String("value", required: true) ?? "", null, null, null);
            literal.Finish();
        }
        if (tag.Map("environment") is { } environment)
        {
            kinds++;
            result = new TracingTag("", null, environment.String("name", required: true) ?? "", null, environment.String("defaultValue"));
            environment.Finish();
        }
        if (tag.Map("header") is { } header)
        {
            kinds++;
            result = new TracingTag("", null, null, header.String("name", required: true) ?? "", header.String("defaultValue"));
            header.Finish();
        }
        if (tag.Has("formatter"))
        {
            kinds++;
            tag.Error("formatter", "formatter tags (Envoy command operators) are not supported yet; use literal, environment or header");
            tag.Skip("formatter");
        }
        tag.Finish();
        if (kinds != 1)
        {
            tag.Error($"{path} must have exactly one of literal, environment or header");
            return null;
        }
        return result;
    }

    /// <summary>Istio's built-in metrics provider, the one the standard metrics are served through.</summary>
    public const string PrometheusProvider = "prometheus";

    /// <summary>Istio's <c>match.mode</c> (WorkloadMode), the same for access logging, metrics and tracing.</summary>
    private static TelemetryMode Mode(FieldReader match)
    {
        switch (match.String("mode"))
        {
            case null or "CLIENT_AND_SERVER":
                return TelemetryMode.ClientAndServer;
            case "CLIENT":
                return TelemetryMode.Client;
            case "SERVER":
                return TelemetryMode.Server;
            case var other:
                match.Error("mode", $"'{other}' must be CLIENT, SERVER or CLIENT_AND_SERVER");
                return TelemetryMode.ClientAndServer;
        }
    }

    /// <summary>The expression as response-code comparisons, or null when it is outside what Bowline translates.</summary>
    public static AccessLogCondition? Condition(string expression)
    {
        var trimmed = expression.Trim();
        var all = trimmed.Contains("&&", StringComparison.Ordinal);
        if (all && trimmed.Contains("||", StringComparison.Ordinal))
        {
            return null;
        }
        var comparisons = new List<ResponseCodeCondition>();
        foreach (var term in trimmed.Split(all ? "&&" : "||"))
        {
            var m = ComparisonRegex().Match(term.Trim());
            if (!m.Success || !int.TryParse(m.Groups["value"].Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value) || value > 999)
            {
                return null;
            }
            if (m.Groups["op"].Value == "<" && value == 0)
            {
                // Matches nothing; as a status_code_filter it would become <= 0 and match every connection.
                return null;
            }
            comparisons.Add(new ResponseCodeCondition(m.Groups["op"].Value, value));
        }
        return new AccessLogCondition(comparisons, all, trimmed);
    }

    [GeneratedRegex(@"^\(?\s*response\.code\s*(?<op>==|>=|<=|>|<)\s*(?<value>\d+)\s*\)?$")]
    private static partial Regex ComparisonRegex();
}
