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

/// <summary>Every stat of the proxy by its Envoy-style name (<c>cluster.outbound|9080||reviews...upstream_rq_total</c>). Thread-safe.</summary>
internal sealed class ProxyStats
{
    private readonly ConcurrentDictionary<string, Stat> _stats = new(StringComparer.Ordinal);

    /// <summary>Gets or creates a stat; call at config-compile time, keep the reference.</summary>
    public Stat Get(string name) => _stats.GetOrAdd(name, static _ => new Stat());

    /// <summary>Envoy's <c>/stats</c> text format: <c>name: value</c>, sorted.</summary>
    public string Render()
    {
        var text = new StringBuilder();
        foreach (var (name, stat) in _stats.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            text.Append(CultureInfo.InvariantCulture, $"{name}: {stat.Value}\n");
        }
        return text.ToString();
    }

    public long ValueOf(string name) => _stats.TryGetValue(name, out var stat) ? stat.Value : 0;
}
