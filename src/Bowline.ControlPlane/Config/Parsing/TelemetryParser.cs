using System.Text.RegularExpressions;

namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>
/// Istio's <c>Telemetry</c>: <c>accessLogging</c> (providers, disabled, match.mode, filter.expression) is read and
/// applied; <c>metrics</c> and <c>tracing</c> are accepted with a warning until Bowline's metrics and tracing exist;
/// <c>targetRefs</c> is refused (there is no Kubernetes Gateway API here). Only the built-in <c>envoy</c> provider exists.
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
                if (name != EnvoyProvider)
                {
                    provider.Error("name", $"provider '{name}' is not defined: Bowline has Istio's built-in '{EnvoyProvider}' provider only (meshConfig extensionProviders are not supported yet)");
                }
                providers.Add(name);
            }
            var disabled = logging.Bool("disabled") ?? false;
            var mode = TelemetryMode.ClientAndServer;
            if (logging.Map("match") is { } match)
            {
                mode = match.String("mode") switch
                {
                    null or "CLIENT_AND_SERVER" => TelemetryMode.ClientAndServer,
                    "CLIENT" => TelemetryMode.Client,
                    "SERVER" => TelemetryMode.Server,
                    var other => Invalid(match, other),
                };
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
        foreach (var key in new[] { "metrics", "tracing" }.Where(spec.Has))
        {
            spec.Warning(key, $"{key} is not applied yet: Bowline's Istio metrics and tracing are still being built; accessLogging is applied");
            spec.MapList(key);
        }
        return new Telemetry(meta, selector, entries);
    }

    private static TelemetryMode Invalid(FieldReader match, string mode)
    {
        match.Error("mode", $"'{mode}' must be CLIENT, SERVER or CLIENT_AND_SERVER");
        return TelemetryMode.ClientAndServer;
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
