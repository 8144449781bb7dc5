using System.Globalization;
using System.Net;
using Bowline.EndToEnd.Tests.Infrastructure;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>
/// A real Prometheus (Debian's package) scrapes every sidecar's status port and the control plane, and the PromQL of
/// Istio's own mesh dashboard (manifests/addons/dashboards/istio-mesh-dashboard.gen.json: traffic volume, success rate,
/// 4xx and 5xx, the HTTP workloads table with its p50/p90/p99 and success rate, the TCP workloads table's bytes
/// received and sent, component versions) answers what the traffic sent implies.
/// </summary>
/// <remarks>
/// Rates are exact, not approximate, because the window is taken from the scraped samples themselves: every series
/// exists before the measured traffic (a warm-up request each), the window starts 1 ms before the last sample that has
/// only the warm-up and ends 1 ms after the first that has all of it, so Prometheus's extrapolation stretches every
/// series alike and <c>rate</c> is the increase over the sampled interval S. The dashboards' <c>$__rate_interval</c>
/// is that window. (A histogram bucket still at 0 at the window's start is the one exception; see the quantiles.)
/// </remarks>
public sealed class PrometheusDashboardTests
{
    private const string Reviews = "reviews.default.svc.cluster.local";
    private const string Ratings = "ratings.default.svc.cluster.local";
    private const string TcpEcho = "tcp-echo.default.svc.cluster.local";

    [Fact]
    public async Task IstioMeshDashboard_Queries_AnswerWhatTheTrafficImplies()
    {
        await using var reviewsApp = await TestBackend.StartAsync("v1");
        await using var ratingsApp = await TestBackend.StartAsync("ratings");
        await using var echoApp = TcpEchoBackend.Start("one");
        await using var mesh = await MeshHarness.StartMtlsAsync(("reviews.yaml", MeshYaml.Service("reviews", 9080)), ("ratings.yaml", MeshYaml.Service("ratings", 9080)),
            ("tcp-echo.yaml", MeshYaml.Service("tcp-echo", 9000, portName: "tcp")));
        await mesh.StartSidecarAsync("tcp-echo-v1", new Dictionary<string, string> { ["app"] = "tcp-echo", ["version"] = "v1" }, [("tcp", 9000, echoApp.Port)]);
        var echoPort = Ports.Free();
        var reviews = await mesh.StartSidecarAsync("reviews-v1", new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v1" }, [("http", 9080, reviewsApp.Port)]);
        var ratings = await mesh.StartSidecarAsync("ratings-v1", new Dictionary<string, string> { ["app"] = "ratings", ["version"] = "v1" }, [("http", 9080, ratingsApp.Port)]);
        var productpage = await mesh.StartSidecarAsync("productpage-v1", new Dictionary<string, string> { ["app"] = "productpage", ["version"] = "v1" }, [], null, "",
            new Dictionary<string, int> { [$"{TcpEcho}:9000"] = echoPort }, $"outbound|9080||{Reviews}", $"outbound|9080||{Ratings}", $"outbound|9000||{TcpEcho}");
        await using var prometheus = await PrometheusServer.StartAsync(
            ("sidecars", "/stats/prometheus", [productpage.Host.StatusAddress!, reviews.Host.StatusAddress!, ratings.Host.StatusAddress!]),
            ("istiod", "/metrics", [mesh.ControlPlane.MonitoringAddress]));
        using var http = productpage.Client();

        // Warm-up: one request of each kind and one TCP connection, so every series (and every histogram bucket) exists
        // before the measure.
        // 500 rather than 503: Istio's default retries would resend a 503, and the count here is of requests sent.
        (string Url, HttpStatusCode Code)[] kinds = [("http://reviews:9080/", HttpStatusCode.OK), ("http://reviews:9080/status-if/v1/404", HttpStatusCode.NotFound),
            ("http://ratings:9080/", HttpStatusCode.OK), ("http://ratings:9080/status-if/ratings/500", HttpStatusCode.InternalServerError)];
        foreach (var (url, code) in kinds)
        {
            Assert.Equal(code, (await http.GetAsync(url)).StatusCode);
        }
        await EchoAsync(echoPort);
        const string Source = "istio_requests_total{reporter=~\"source|waypoint\"}";
        const string TcpClosed = "istio_tcp_connections_closed_total{reporter=~\"source|waypoint\"}";
        await WaitForAsync(prometheus, $"sum({Source})", 4);
        await WaitForAsync(prometheus, $"sum({TcpClosed})", 1);

        // The measure: reviews 6 x 200 and 2 x 404, ratings 3 x 200 and 1 x 500.
        foreach (var (url, code, times) in new[] { (kinds[0].Url, kinds[0].Code, 6), (kinds[1].Url, kinds[1].Code, 2), (kinds[2].Url, kinds[2].Code, 3), (kinds[3].Url, kinds[3].Code, 1) })
        {
            for (var i = 0; i < times; i++)
            {
                Assert.Equal(code, (await http.GetAsync(url)).StatusCode);
            }
        }
        // Then TCP, after all of HTTP: 5 connections, each "hello\n" (6 bytes) up and "one hello\n" (10 bytes) back.
        for (var i = 0; i < 5; i++)
        {
            await EchoAsync(echoPort);
        }
        await WaitForAsync(prometheus, $"sum({Source})", 16);
        await WaitForAsync(prometheus, $"sum({TcpClosed})", 6);

        // The window from the samples: the client's sidecar is one target, so all its series share scrape times. It
        // starts at the last scrape with only the HTTP warm-up (the TCP measure came after all of HTTP's) and ends at
        // the second scrape that saw all 16 requests and 6 closed connections: a scrape racing the last record may have
        // read one of its series before another; the next one, a second later, reads all.
        var samples = Summed(await prometheus.QueryAsync($"{Source}[10m]"));
        var closed = Summed(await prometheus.QueryAsync($"{TcpClosed}[10m]"));
        bool Complete(double time) => samples.Any(s => s.Time == time && s.Value == 16) && closed.Any(c => c.Time == time && c.Value == 6);
        using (var deadline = new CancellationTokenSource(Timeouts.Long))
        {
            while (samples.Count(s => Complete(s.Time)) < 2)
            {
                await Task.Delay(200, deadline.Token);
                samples = Summed(await prometheus.QueryAsync($"{Source}[10m]"));
                closed = Summed(await prometheus.QueryAsync($"{TcpClosed}[10m]"));
            }
        }
        var start = samples.Last(s => s.Value == 4).Time;
        var end = samples.Where(s => Complete(s.Time)).Skip(1).First().Time;
        var seconds = end - start;
        var at = end + 0.001;
        var window = $"{(long)Math.Round((seconds + 0.002) * 1000)}ms";
        string Dash(string expr) => expr.Replace("$__rate_interval", window, StringComparison.Ordinal);
        async Task<double> Scalar(string expr) => Assert.Single(await prometheus.QueryAsync(Dash(expr), at)).Value;

        // Traffic Volume, Success Rate, 4xxs, 5xxs: the mesh dashboard's first row, verbatim.
        Assert.Equal(Math.Round(12 / seconds, 2), await Scalar("round(sum (rate(istio_requests_total{reporter=~\"source|waypoint\"}[$__rate_interval])), 0.01)"), 2);
        Assert.Equal(11.0 / 12, await Scalar("sum (rate(istio_requests_total{reporter=~\"source|waypoint\",response_code!~\"5..\"}[$__rate_interval])) / sum (rate(istio_requests_total{reporter=~\"source|waypoint\"}[$__rate_interval]))"), 6);
        Assert.Equal(Math.Round(2 / seconds, 2), await Scalar("round(sum (rate(istio_requests_total{reporter=~\"source|waypoint\",response_code=~\"4..\"}[$__rate_interval])), 0.01)or vector(0)"), 2);
        Assert.Equal(Math.Round(1 / seconds, 2), await Scalar("round(sum (rate(istio_requests_total{reporter=~\"source|waypoint\",response_code=~\"5..\"}[$__rate_interval])), 0.01)or vector(0)"), 2);

        // HTTP/gRPC Workloads: one row per destination workload, its request rate and success rate.
        var volume = await prometheus.QueryAsync(Dash("label_join(sum by (destination_workload,destination_workload_namespace,destination_service) (rate(istio_requests_total{reporter=~\"source|waypoint\"}[$__rate_interval])), \"destination_workload_var\", \".\", \"destination_workload\", \"destination_workload_namespace\")"), at);
        Assert.Equal([("ratings-v1.default", Ratings), ("reviews-v1.default", Reviews)], volume.Select(s => (s.Labels["destination_workload_var"], s.Labels["destination_service"])).Order());
        Assert.Equal(8 / seconds, Assert.Single(volume, s => s.Labels["destination_workload"] == "reviews-v1").Value, 6);
        Assert.Equal(4 / seconds, Assert.Single(volume, s => s.Labels["destination_workload"] == "ratings-v1").Value, 6);
        var success = await prometheus.QueryAsync(Dash("label_join(sum by (destination_workload,destination_workload_namespace) (rate(istio_requests_total{reporter=~\"source|waypoint\",response_code!~\"5..\"}[$__rate_interval]))/sum by (destination_workload,destination_workload_namespace) (rate(istio_requests_total{reporter=~\"source|waypoint\"}[$__rate_interval])), \"destination_workload_var\", \".\", \"destination_workload\", \"destination_workload_namespace\")"), at);
        Assert.Equal(1.0, Assert.Single(success, s => s.Labels["destination_workload"] == "reviews-v1").Value, 6);
        Assert.Equal(0.75, Assert.Single(success, s => s.Labels["destination_workload"] == "ratings-v1").Value, 6);

        // Its p50/p90/p99: Prometheus's interpolation over the buckets' increases in the window, computed here from the
        // raw bucket samples at the window's two ends.
        var buckets = await prometheus.QueryAsync("istio_request_duration_milliseconds_bucket{reporter=~\"source|waypoint\",destination_workload=\"reviews-v1\"}[10m]");
        var increases = buckets.GroupBy(b => Le(b.Labels["le"])).Select(g => (Le: g.Key, Count: Summed(g.ToList()) is var sum ? sum.Single(s => s.Time == end).Value - sum.Single(s => s.Time == start).Value : 0))
            .OrderBy(b => b.Le).ToList();
        Assert.Equal(8, increases[^1].Count);
        foreach (var q in new[] { 0.5, 0.9, 0.99 })
        {
            var quantile = await prometheus.QueryAsync(Dash($"label_join(histogram_quantile({q.ToString(CultureInfo.InvariantCulture)}, sum by (le,destination_workload,destination_workload_namespace) (rate(istio_request_duration_milliseconds_bucket{{reporter=~\"source|waypoint\"}}[$__rate_interval]))), \"destination_workload_var\", \".\", \"destination_workload\", \"destination_workload_namespace\")"), at);
            // Within 5%: a bucket whose count was 0 at the window's start is not stretched like the others (Prometheus's
            // extrapolation stops at zero), which moves counts by at most 2 ms / S; the interpolation is continuous in them.
            var expected = Quantile(q, increases);
            Assert.InRange(Assert.Single(quantile, s => s.Labels["destination_workload"] == "reviews-v1").Value, expected * 0.95, expected * 1.05);
        }

        // TCP Workloads: bytes received (what the client sent) and sent (what came back) per destination workload.
        foreach (var (metric, bytes) in new[] { ("istio_tcp_received_bytes_total", 30.0), ("istio_tcp_sent_bytes_total", 50.0) })
        {
            var tcp = await prometheus.QueryAsync(Dash($"label_join(sum by (destination_workload,destination_workload_namespace,destination_service) (rate({metric}{{reporter=~\"source|waypoint\"}}[$__rate_interval])), \"destination_workload_var\", \".\", \"destination_workload\", \"destination_workload_namespace\")"), at);
            var row = Assert.Single(tcp);
            Assert.Equal(("tcp-echo-v1.default", TcpEcho), (row.Labels["destination_workload_var"], row.Labels["destination_service"]));
            Assert.Equal(bytes / seconds, row.Value, 6);
        }

        // The destination side agrees: the server's sidecars counted the same requests, under mTLS.
        await WaitForAsync(prometheus, $"sum(istio_requests_total{{reporter=\"destination\",destination_service=\"{Reviews}\",connection_security_policy=\"mutual_tls\"}})", 10);

        // Istio Component Versions: the control plane and the three scraped sidecars, one build; and every target is up.
        var versions = await prometheus.QueryAsync("sum by (component,tag) (istio_build)", at);
        Assert.Equal([("pilot", 1.0), ("proxy", 3.0)], versions.Select(v => (v.Labels["component"], v.Value)).Order());
        Assert.All(versions, v => Assert.Equal(Bowline.Xds.BuildInfo.Tag, v.Labels["tag"]));
        // The control plane's own state, as istiod's: the connected proxies, pushes timed per type and counted by
        // trigger (each sidecar's registration is an endpoint change), and their convergence.
        // At least: the counters are process-wide, and other tests' meshes may share this process.
        Assert.True(await Scalar("sum(pilot_xds)") >= 3);
        Assert.True(await Scalar("sum(pilot_push_triggers{type=\"endpoint\"})") >= 2);
        Assert.True(await Scalar("sum(pilot_xds_push_time_count{type=\"lds\"})") >= 3);
        Assert.True(await Scalar("sum(pilot_proxy_convergence_time_count)") >= 1);
        Assert.All(await prometheus.QueryAsync("up", at), s => Assert.Equal(1, s.Value));
        Assert.Equal(4, (await prometheus.QueryAsync("up", at)).Count);
    }

    /// <summary>One TCP connection through the client's sidecar: a line up, its echo back, closed.</summary>
    private static async Task EchoAsync(int port)
    {
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port).WaitAsync(Timeouts.Short);
        var stream = client.GetStream();
        await stream.WriteAsync("hello\n"u8.ToArray()).AsTask().WaitAsync(Timeouts.Short);
        using var reader = new StreamReader(stream);
        Assert.Equal("one hello", await reader.ReadLineAsync().WaitAsync(Timeouts.Short));
    }

    /// <summary>The series' raw samples summed per scrape time (series of one target share their scrape times).</summary>
    private static List<(double Time, double Value)> Summed(IReadOnlyList<PromSeries> series) =>
        [.. series.SelectMany(s => s.Samples).GroupBy(s => s.Time).Select(g => (g.Key, g.Sum(s => s.Value))).OrderBy(s => s.Key)];

    private static double Le(string le) => le == "+Inf" ? double.PositiveInfinity : double.Parse(le, CultureInfo.InvariantCulture);

    /// <summary>Prometheus's histogram_quantile: the bucket the rank falls in, linearly interpolated (the lowest bucket from 0).</summary>
    private static double Quantile(double q, List<(double Le, double Count)> cumulative)
    {
        var rank = q * cumulative[^1].Count;
        var i = cumulative.FindIndex(b => b.Count >= rank);
        if (double.IsPositiveInfinity(cumulative[i].Le))
        {
            return cumulative[^2].Le;
        }
        var lower = i == 0 ? 0 : cumulative[i - 1].Le;
        var below = i == 0 ? 0 : cumulative[i - 1].Count;
        return lower + ((cumulative[i].Le - lower) * (rank - below) / (cumulative[i].Count - below));
    }

    /// <summary>Waits (bounded) until Prometheus has scraped the expected value; the scrape runs every second.</summary>
    private static async Task WaitForAsync(PrometheusServer prometheus, string query, double expected)
    {
        using var deadline = new CancellationTokenSource(Timeouts.Long);
        while (true)
        {
            var result = await prometheus.QueryAsync(query);
            if (result.Count == 1 && result[0].Value == expected)
            {
                return;
            }
            if (deadline.IsCancellationRequested)
            {
                Assert.Fail($"prometheus never saw {query} = {expected}; last: {string.Join(", ", result.Select(r => r.Value))}");
            }
            await Task.Delay(200, CancellationToken.None);
        }
    }
}
