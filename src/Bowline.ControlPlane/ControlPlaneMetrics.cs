using System.Globalization;
using System.Text;

namespace Bowline.ControlPlane;

/// <summary>
/// The control plane's operator-visible counters, exposed in the Prometheus text format on the monitoring port with
/// Istio's pilot names where Istio has one (<c>pilot_xds_pushes</c>, <c>pilot_total_xds_rejects</c>, <c>pilot_xds</c>).
/// Plain atomics: a handful of counters do not justify an exporter dependency on this side.
/// </summary>
internal static class ControlPlaneMetrics
{
    private static long s_connected;
    private static long s_configErrors;
    private static long s_jwksStale;
    private static readonly Dictionary<string, Counter> s_pushes = NewPerType();
    private static readonly Dictionary<string, Counter> s_rejects = NewPerType();

    public static Counter ConfigGenerations { get; } = new();

    public static Counter TranslationFailures { get; } = new();

    public static Counter InvalidNodes { get; } = new();

    public static Counter TranslationWarnings { get; } = new();

    public static Counter OversizedResponses { get; } = new();

    /// <summary>JWKS fetches (OpenID discovery included) that succeeded and failed, under Istio's names.</summary>
    public static Counter JwksFetchSuccesses { get; } = new();

    public static Counter JwksFetchFailures { get; } = new();

    /// <summary>JWKS sources served stale (the last refresh failed) or not at all (never fetched: their tokens are refused).</summary>
    public static void SetJwksStale(int count) => Interlocked.Exchange(ref s_jwksStale, count);

    public static Counter XdsUnauthenticated { get; } = new();

    public static Counter XdsPermissionDenied { get; } = new();

    public static Counter ServingCertificateFailures { get; } = new();

    public static void Connected() => Interlocked.Increment(ref s_connected);

    public static void Disconnected() => Interlocked.Decrement(ref s_connected);

    public static void SetConfigErrors(int count) => Interlocked.Exchange(ref s_configErrors, count);

    public static void Pushed(string shortType, double seconds)
    {
        s_pushes.GetValueOrDefault(shortType)?.Add(1);
        s_pushTime.GetValueOrDefault(shortType)?.Record(seconds);
    }

    /// <summary>pilot_proxy_convergence_time, in Istio's buckets (seconds).</summary>
    private static readonly Histogram s_convergence = new([0.1, 0.5, 1, 3, 5, 10, 20, 30]);

    /// <summary>Records one proxy ACKing a type a config change altered, <paramref name="seconds"/> after the change was published.</summary>
    public static void Converged(double seconds) => s_convergence.Record(seconds);

    /// <summary>pilot_xds_push_time per type, in Istio's buckets: from the push's cause (a publication, or the proxy connecting) to the response sent.</summary>
    private static readonly Dictionary<string, Histogram> s_pushTime = new(StringComparer.Ordinal)
    {
        ["LDS"] = new([0.01, 0.1, 1, 3, 5, 10, 20, 30]), ["RDS"] = new([0.01, 0.1, 1, 3, 5, 10, 20, 30]), ["CDS"] = new([0.01, 0.1, 1, 3, 5, 10, 20, 30]),
        ["EDS"] = new([0.01, 0.1, 1, 3, 5, 10, 20, 30]), ["SDS"] = new([0.01, 0.1, 1, 3, 5, 10, 20, 30]),
    };

    /// <summary>Istio's pilot_push_triggers: why a new generation was pushed (config, service, endpoint, secret).</summary>
    private static readonly Dictionary<string, Counter> s_triggers = new(StringComparer.Ordinal)
    {
        [Config.PushTrigger.Config] = new(), [Config.PushTrigger.Service] = new(), [Config.PushTrigger.Endpoint] = new(), [Config.PushTrigger.Secret] = new(),
    };

    public static void Triggered(string trigger) => s_triggers.GetValueOrDefault(trigger)?.Add(1);

    public static void Rejected(string shortType) => s_rejects.GetValueOrDefault(shortType)?.Add(1);

    public static string Render()
    {
        var text = new StringBuilder();
        // Istio's build info, which the mesh dashboard's "Istio Component Versions" panel reads.
        text.Append(Bowline.Xds.BuildInfo.IstioBuildMetric("pilot"));
        Gauge(text, "pilot_xds", "Connected xDS clients.", Interlocked.Read(ref s_connected));
        Gauge(text, "bowline_config_errors", "Config errors in the current files (resources rejected; their last good version serves).", Interlocked.Read(ref s_configErrors));
        CounterLine(text, "bowline_config_generations_total", "Accepted config generations.", ConfigGenerations.Value);
        CounterLine(text, "bowline_translation_failures_total", "Snapshots that failed translation or the consistency check; the proxy kept its last good snapshot.", TranslationFailures.Value);
        CounterLine(text, "bowline_translation_warnings_total", "Distinct problems translation worked around (routes to unknown hosts or subsets, conflicting VirtualServices), per generation.", TranslationWarnings.Value);
        CounterLine(text, "bowline_xds_invalid_nodes_total", "Streams refused because the node was invalid.", InvalidNodes.Value);
        CounterLine(text, "bowline_xds_oversized_responses_total", "Responses not sent because they exceeded the xDS message limit; the proxy kept its previous version of that type.", OversizedResponses.Value);
        CounterLine(text, "pilot_jwks_resolver_network_fetch_success_total", "Successful JWKS (and OpenID discovery) fetches.", JwksFetchSuccesses.Value);
        CounterLine(text, "pilot_jwks_resolver_network_fetch_fail_total", "Failed JWKS (and OpenID discovery) fetches.", JwksFetchFailures.Value);
        Gauge(text, "bowline_jwks_stale", "JWKS sources whose last fetch failed: served stale, or, never fetched, verifying no token (401).", Interlocked.Read(ref s_jwksStale));
        CounterLine(text, "bowline_xds_unauthenticated_total", "xDS streams (ADS and CSDS) on the TLS port refused because the client presented no valid mesh certificate.", XdsUnauthenticated.Value);
        CounterLine(text, "bowline_xds_permission_denied_total", "ADS streams refused because the node claimed another identity than its certificate proves.", XdsPermissionDenied.Value);
        CounterLine(text, "bowline_serving_certificate_failures_total", "Failed renewals of the control plane's TLS serving certificate; the current one stayed in use.", ServingCertificateFailures.Value);
        text.Append("# HELP pilot_proxy_convergence_time Delay in seconds between a config change and a proxy receiving and acknowledging it.\n# TYPE pilot_proxy_convergence_time histogram\n");
        s_convergence.Render(text, "pilot_proxy_convergence_time", "");
        text.Append("# HELP pilot_xds_push_time Seconds from a push's cause (a config publication or the proxy connecting) to its response being sent, by type.\n# TYPE pilot_xds_push_time histogram\n");
        foreach (var (type, histogram) in s_pushTime)
        {
            histogram.Render(text, "pilot_xds_push_time", $"type=\"{type.ToLowerInvariant()}\"");
        }
        text.Append("# HELP pilot_push_triggers Config generations pushed, by what changed.\n# TYPE pilot_push_triggers counter\n");
        foreach (var (trigger, counter) in s_triggers)
        {
            text.Append(CultureInfo.InvariantCulture, $"pilot_push_triggers{{type=\"{trigger}\"}} {counter.Value}\n");
        }
        text.Append("# HELP pilot_xds_pushes Pushes by type.\n# TYPE pilot_xds_pushes counter\n");
        foreach (var (type, counter) in s_pushes)
        {
            text.Append(CultureInfo.InvariantCulture, $"pilot_xds_pushes{{type=\"{type.ToLowerInvariant()}\"}} {counter.Value}\n");
        }
        text.Append("# HELP pilot_total_xds_rejects Responses NACKed by clients, by type.\n# TYPE pilot_total_xds_rejects counter\n");
        foreach (var (type, counter) in s_rejects)
        {
            text.Append(CultureInfo.InvariantCulture, $"pilot_total_xds_rejects{{type=\"{type.ToLowerInvariant()}\"}} {counter.Value}\n");
        }
        return text.ToString();
    }

    private static void Gauge(StringBuilder text, string name, string help, long value) =>
        text.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n");

    private static void CounterLine(StringBuilder text, string name, string help, long value) =>
        text.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n");

    private static Dictionary<string, Counter> NewPerType() => new(StringComparer.Ordinal)
    {
        ["LDS"] = new(), ["RDS"] = new(), ["CDS"] = new(), ["EDS"] = new(), ["SDS"] = new(),
    };

    /// <summary>A Prometheus histogram of seconds with fixed buckets, safe from any thread.</summary>
    internal sealed class Histogram(double[] buckets)
    {
        private readonly long[] _counts = new long[buckets.Length + 1];
        private long _sumMicros;

        public void Record(double seconds)
        {
            var bucket = Array.FindIndex(buckets, b => seconds <= b);
            Interlocked.Increment(ref _counts[bucket < 0 ? buckets.Length : bucket]);
            Interlocked.Add(ref _sumMicros, (long)(seconds * 1_000_000));
        }

        /// <param name="labels">Labels before <c>le</c> (<c>type="lds"</c>), or empty.</param>
        public void Render(StringBuilder text, string name, string labels)
        {
            var prefix = labels.Length > 0 ? labels + "," : "";
            var braces = labels.Length > 0 ? "{" + labels + "}" : "";
            long cumulative = 0;
            for (var i = 0; i < buckets.Length; i++)
            {
                cumulative += Interlocked.Read(ref _counts[i]);
                text.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{prefix}le=\"{buckets[i]}\"}} {cumulative}\n");
            }
            cumulative += Interlocked.Read(ref _counts[^1]);
            text.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{prefix}le=\"+Inf\"}} {cumulative}\n");
            text.Append(CultureInfo.InvariantCulture, $"{name}_sum{braces} {Interlocked.Read(ref _sumMicros) / 1_000_000.0}\n");
            text.Append(CultureInfo.InvariantCulture, $"{name}_count{braces} {cumulative}\n");
        }
    }

    /// <summary>A monotonically increasing count, safe from any thread.</summary>
    internal sealed class Counter
    {
        private long _value;

        public long Value => Interlocked.Read(ref _value);

        public void Add(long delta) => Interlocked.Add(ref _value, delta);
    }
}
