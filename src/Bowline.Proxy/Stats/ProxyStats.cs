using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Bowline.Proxy.Stats;

/// <summary>A counter or gauge, updated with atomics from any request thread. Components hold the instance, never look it up per request.</summary>
internal sealed class Stat
{
    private long _value;

    public long Value => Interlocked.Read(ref _value);

    public void Increment() => Interlocked.Increment(ref _value);

    public void Decrement() => Interlocked.Decrement(ref _value);

    public void Add(long amount) => Interlocked.Add(ref _value, amount);

    public void Set(long value) => Interlocked.Exchange(ref _value, value);
}

/// <summary>
/// The variable part of a stat name, as Envoy's tag extractors pull it out for Prometheus: in
/// <c>cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_total</c> the cluster name, which itself
/// holds dots and so cannot be found again by parsing. Stats register with their tag, so the Prometheus name
/// (<c>envoy_cluster_upstream_rq_total{cluster_name="..."}</c>) is exact.
/// </summary>
internal sealed record StatTag(string Family, string Label, string Value)
{
    public static StatTag Cluster(string name) => new("cluster", "cluster_name", name);

    public static StatTag Listener(string address) => new("listener", "listener_address", address);

    public static StatTag Http(string statPrefix) => new("http", "http_conn_manager_prefix", statPrefix);

    public static StatTag Tcp(string statPrefix) => new("tcp", "tcp_prefix", statPrefix);
}

/// <summary>Every stat of the proxy by its Envoy-style name (<c>cluster.outbound|9080||reviews...upstream_rq_total</c>). Thread-safe.</summary>
internal sealed class ProxyStats
{
    private readonly ConcurrentDictionary<string, Entry> _stats = new(StringComparer.Ordinal);

    /// <summary>Gets or creates an untagged stat (<c>control_plane.connected_state</c>); call at config-compile time, keep the reference.</summary>
    public Stat Get(string name) => _stats.GetOrAdd(name, static n => new Entry(new Stat(), null, n)).Stat;

    /// <summary>Gets or creates <c>family.value.suffix</c> with its tag (<c>cluster.X.upstream_rq_total</c>).</summary>
    public Stat Get(StatTag tag, string suffix) =>
        _stats.GetOrAdd($"{tag.Family}.{tag.Value}.{suffix}", static (_, arg) => new Entry(new Stat(), arg.tag, $"{arg.tag.Family}.{arg.suffix}"), (tag, suffix)).Stat;

    /// <summary>Envoy's <c>/stats</c> text format: <c>name: value</c>, sorted.</summary>
    public string Render()
    {
        var text = new StringBuilder();
        foreach (var (name, entry) in _stats.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            text.Append(CultureInfo.InvariantCulture, $"{name}: {entry.Stat.Value}\n");
        }
        return text.ToString();
    }

    /// <summary>
    /// Envoy's <c>/stats/prometheus</c>: <c>envoy_</c>, the name without its tag, dots as underscores, the tag as a label,
    /// and a response-code class (<c>upstream_rq_2xx</c>) as Envoy's <c>envoy_response_code_class</c> label.
    /// </summary>
    public void RenderPrometheus(StringBuilder text)
    {
        var families = new SortedDictionary<string, List<(string Labels, long Value)>>(StringComparer.Ordinal);
        foreach (var entry in _stats.Values)
        {
            var (name, labels) = PrometheusName(entry);
            if (!families.TryGetValue(name, out var series))
            {
                families[name] = series = [];
            }
            series.Add((labels, entry.Stat.Value));
        }
        foreach (var (name, series) in families)
        {
            text.Append(CultureInfo.InvariantCulture, $"# TYPE {name} {(IsGauge(name) ? "gauge" : "counter")}\n");
            foreach (var (labels, value) in series.OrderBy(s => s.Labels, StringComparer.Ordinal))
            {
                text.Append(name);
                if (labels.Length > 0)
                {
                    text.Append('{').Append(labels).Append('}');
                }
                text.Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
        }
    }

    public long ValueOf(string name) => _stats.TryGetValue(name, out var stat) ? stat.Stat.Value : 0;

    private static (string Name, string Labels) PrometheusName(Entry entry)
    {
        var name = entry.Untagged;
        var labels = new StringBuilder();
        // upstream_rq_2xx → upstream_rq_xx{envoy_response_code_class="2"}, as Envoy's default extractor does.
        if (name.Length > 4 && name.EndsWith("xx", StringComparison.Ordinal) && name[^4] == '_' && name[^3] is >= '1' and <= '5')
        {
            labels.Append(CultureInfo.InvariantCulture, $"envoy_response_code_class=\"{name[^3]}\"");
            name = name[..^3] + "xx";
        }
        if (entry.Tag is { } tag)
        {
            if (labels.Length > 0)
            {
                labels.Append(',');
            }
            labels.Append(tag.Label).Append("=\"");
            PrometheusText.AppendEscaped(labels, tag.Value);
            labels.Append('"');
        }
        return ("envoy_" + PrometheusText.Sanitize(name), labels.ToString());
    }

    /// <summary>Envoy types each stat; here the gauges are the few names that go down as well as up.</summary>
    private static bool IsGauge(string name) =>
        name.EndsWith("_active", StringComparison.Ordinal) || name.Contains("_membership_", StringComparison.Ordinal) || name.EndsWith("_connected_state", StringComparison.Ordinal)
        || name.EndsWith("_healthy", StringComparison.Ordinal) || name.EndsWith("_expiry_seconds", StringComparison.Ordinal) || name.EndsWith("_total_buffered", StringComparison.Ordinal)
        || name.EndsWith("_active_faults", StringComparison.Ordinal) || name.EndsWith("_last_update_seconds", StringComparison.Ordinal);

    /// <param name="Untagged">The name with the tag's value taken out (<c>cluster.upstream_rq_total</c>).</param>
    private sealed record Entry(Stat Stat, StatTag? Tag, string Untagged);
}

/// <summary>The Prometheus text exposition format's small rules, shared by every renderer.</summary>
internal static class PrometheusText
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>A metric name: <c>[a-zA-Z0-9_]</c>, anything else (dots, pipes) as underscores.</summary>
    public static string Sanitize(string name)
    {
        return string.Create(name.Length, name, static (span, source) =>
        {
            for (var i = 0; i < source.Length; i++)
            {
                var c = source[i];
                span[i] = char.IsAsciiLetterOrDigit(c) || c == '_' ? c : '_';
            }
        });
    }

    /// <summary>A label value: backslash, double quote and newline escaped.</summary>
    public static void AppendEscaped(StringBuilder text, string value)
    {
        foreach (var c in value)
        {
            switch (c)
            {
                case '\\':
                    text.Append(@"\\");
                    break;
                case '"':
                    text.Append("\\\"");
                    break;
                case '\n':
                    text.Append(@"\n");
                    break;
                default:
                    text.Append(c);
                    break;
            }
        }
    }

    public static string Escape(string value)
    {
        var text = new StringBuilder(value.Length + 2);
        AppendEscaped(text, value);
        return text.ToString();
    }
}
