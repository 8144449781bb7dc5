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

    public static void Pushed(string shortType) => s_pushes.GetValueOrDefault(shortType)?.Add(1);

    /// <summary>Istio's buckets for pilot_proxy_convergence_time, in seconds.</summary>
    private static readonly double[] s_convergenceBuckets = [0.1, 0.5, 1, 3, 5, 10, 20, 30];
    private static readonly long[] s_convergence = new long[s_convergenceBuckets.Length + 1];
    private static long s_convergenceSumMicros;

    /// <summary>Records one proxy ACKing a type a config change altered, <paramref name="seconds"/> after the change was published.</summary>
    public static void Converged(double seconds)
    {
        var bucket = Array.FindIndex(s_convergenceBuckets, b => seconds <= b);
        Interlocked.Increment(ref s_convergence[bucket < 0 ? s_convergenceBuckets.Length : bucket]);
        Interlocked.Add(ref s_convergenceSumMicros, (long)(seconds * 1_000_000));
    }

    public static void Rejected(string shortType) => s_rejects.GetValueOrDefault(shortType)?.Add(1);

    private static readonly string BuildTag = "bowline-" + (typeof(ControlPlaneMetrics).Assembly.GetName().Version?.ToString(3) ?? "0");

    public static string Render()
    {
        var text = new StringBuilder();
        // Istio's build info, which the mesh dashboard's "Istio Component Versions" panel reads.
        text.Append(CultureInfo.InvariantCulture, $"# HELP istio_build Istio component build info\n# TYPE istio_build gauge\nistio_build{{component=\"pilot\",tag=\"{BuildTag}\"}} 1\n");
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
        CounterLine(text, "bowline_xds_unauthenticated_total", "ADS streams on the TLS port refused because the client presented no valid mesh certificate.", XdsUnauthenticated.Value);
        CounterLine(text, "bowline_xds_permission_denied_total", "ADS streams refused because the node claimed another identity than its certificate proves.", XdsPermissionDenied.Value);
        CounterLine(text, "bowline_serving_certificate_failures_total", "Failed renewals of the control plane's TLS serving certificate; the current one stayed in use.", ServingCertificateFailures.Value);
        text.Append("# HELP pilot_proxy_convergence_time Delay in seconds between a config change and a proxy receiving and acknowledging it.\n# TYPE pilot_proxy_convergence_time histogram\n");
        long cumulative = 0;
        for (var i = 0; i < s_convergenceBuckets.Length; i++)
        {
            cumulative += Interlocked.Read(ref s_convergence[i]);
            text.Append(CultureInfo.InvariantCulture, $"pilot_proxy_convergence_time_bucket{{le=\"{s_convergenceBuckets[i]}\"}} {cumulative}\n");
        }
        cumulative += Interlocked.Read(ref s_convergence[^1]);
        text.Append(CultureInfo.InvariantCulture, $"pilot_proxy_convergence_time_bucket{{le=\"+Inf\"}} {cumulative}\n");
        text.Append(CultureInfo.InvariantCulture, $"pilot_proxy_convergence_time_sum {Interlocked.Read(ref s_convergenceSumMicros) / 1_000_000.0}\n");
        text.Append(CultureInfo.InvariantCulture, $"pilot_proxy_convergence_time_count {cumulative}\n");
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

    /// <summary>A monotonically increasing count, safe from any thread.</summary>
    internal sealed class Counter
    {
        private long _value;

        public long Value => Interlocked.Read(ref _value);

        public void Add(long delta) => Interlocked.Add(ref _value, delta);
    }
}
