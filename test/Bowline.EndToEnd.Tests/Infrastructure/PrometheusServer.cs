using System.Globalization;
using System.Text.Json;

namespace Bowline.EndToEnd.Tests.Infrastructure;

/// <summary>One series of a Prometheus query answer: its labels and its value (an instant vector) or its samples (a range).</summary>
internal sealed record PromSeries(IReadOnlyDictionary<string, string> Labels, double Value, IReadOnlyList<(double Time, double Value)> Samples);

/// <summary>
/// A real Prometheus server (Debian's <c>prometheus</c> package) the test starts on loopback, scraping the given
/// targets every second into a throw-away TSDB, and asked through its HTTP query API (<c>/api/v1/query</c>).
/// </summary>
internal sealed class PrometheusServer : IAsyncDisposable
{
    private readonly ChildProcess _process;
    private readonly string _dir;
    private readonly HttpClient _http;

    private PrometheusServer(ChildProcess process, string dir, Uri address)
    {
        _process = process;
        _dir = dir;
        _http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = address, Timeout = Timeouts.Short };
    }

    /// <summary>Starts Prometheus scraping each job's targets (<c>host:port</c>) at its metrics path; returns once it is ready.</summary>
    public static async Task<PrometheusServer> StartAsync(params (string Job, string MetricsPath, IReadOnlyList<Uri> Targets)[] jobs)
    {
        const string Binary = "/usr/bin/prometheus";
        if (!File.Exists(Binary))
        {
            throw new InvalidOperationException($"{Binary} is missing: install Debian's prometheus package (apt-get install prometheus), as .ci/run does");
        }
        var dir = Directory.CreateTempSubdirectory("bowline-prometheus-").FullName;
        var scrapes = string.Join("\n", jobs.Select(j => $"""
              - job_name: {j.Job}
                metrics_path: {j.MetricsPath}
                static_configs: [{"{"}targets: [{string.Join(", ", j.Targets.Select(t => $"'{t.Authority}'"))}]{"}"}]
            """));
        await File.WriteAllTextAsync(Path.Combine(dir, "prometheus.yml"), $"""
            global: {"{"}scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s{"}"}
            scrape_configs:
            {scrapes}
            """);
        var port = Ports.Free();
        var process = ChildProcess.Start(Binary, [$"--config.file={Path.Combine(dir, "prometheus.yml")}", $"--storage.tsdb.path={Path.Combine(dir, "data")}",
            $"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]);
        var server = new PrometheusServer(process, dir, new Uri($"http://127.0.0.1:{port}"));
        using var deadline = new CancellationTokenSource(Timeouts.Long);
        while (true)
        {
            try
            {
                using var ready = await server._http.GetAsync("/-/ready", deadline.Token);
                if (ready.IsSuccessStatusCode)
                {
                    return server;
                }
            }
            catch (HttpRequestException) when (!deadline.IsCancellationRequested && !process.Process.HasExited)
            {
            }
            if (process.Process.HasExited || deadline.IsCancellationRequested)
            {
                await server.DisposeAsync();
                throw new InvalidOperationException($"prometheus did not become ready: {process.Output}");
            }
            await Task.Delay(100, deadline.Token);
        }
    }

    /// <summary>Evaluates PromQL at <paramref name="time"/> (Unix seconds; now when null).</summary>
    public async Task<IReadOnlyList<PromSeries>> QueryAsync(string promql, double? time = null)
    {
        var url = "/api/v1/query?query=" + Uri.EscapeDataString(promql) + (time is { } t ? "&time=" + t.ToString("F3", CultureInfo.InvariantCulture) : "");
        using var response = await _http.GetAsync(url);
        var body = await response.Content.ReadAsStringAsync();
        using var json = JsonDocument.Parse(body);
        var root = json.RootElement;
        if (root.GetProperty("status").GetString() != "success")
        {
            throw new InvalidOperationException($"prometheus refused {promql}: {body}");
        }
        var result = new List<PromSeries>();
        var data = root.GetProperty("data");
        if (data.GetProperty("resultType").GetString() == "scalar")
        {
            return [new PromSeries(new Dictionary<string, string>(), Number(data.GetProperty("result")[1]), [])];
        }
        foreach (var series in data.GetProperty("result").EnumerateArray())
        {
            var labels = series.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "", StringComparer.Ordinal);
            if (series.TryGetProperty("value", out var value))
            {
                result.Add(new PromSeries(labels, Number(value[1]), []));
            }
            else
            {
                result.Add(new PromSeries(labels, double.NaN, [.. series.GetProperty("values").EnumerateArray().Select(v => (v[0].GetDouble(), Number(v[1])))]));
            }
        }
        return result;
    }

    private static double Number(JsonElement value) => double.Parse(value.GetString()!, NumberStyles.Float, CultureInfo.InvariantCulture);

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _process.DisposeAsync();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // The TSDB may still be closing; the temp directory is cleaned with the machine.
        }
    }
}
