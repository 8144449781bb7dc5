using System.Net;
using Bowline.EndToEnd.Tests.Infrastructure;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>
/// Istio's standard metrics through real sidecars, real mTLS and the real CA: after a known mix of requests the
/// counters each sidecar serves equal what was sent, under both reporters, with the peer's workload learned by the
/// metadata exchange; a client outside the mesh cannot forge who it is; and the app's own metrics are merged.
/// </summary>
public sealed class MetricsTests
{
    private const string Host = "http://reviews:9080";
    private const string Cluster = "outbound|9080||reviews.default.svc.cluster.local";

    private static async Task<(MeshHarness Mesh, TestBackend Backend, Sidecar Server, Sidecar Client)> StartAsync(params (string File, string Yaml)[] config)
    {
        var backend = await TestBackend.StartAsync("v1");
        var mesh = await MeshHarness.StartMtlsAsync([("reviews.yaml", MeshYaml.Service("reviews", 9080)), .. config]);
        mesh.AppMetrics = new Uri($"http://127.0.0.1:{backend.Port}/metrics");
        var server = await mesh.StartSidecarAsync("reviews-v1", new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v1" }, [("http", 9080, backend.Port)]);
        mesh.AppMetrics = null;
        var client = await mesh.StartSidecarAsync("productpage-v1", new Dictionary<string, string> { ["app"] = "productpage", ["version"] = "v1" }, [], Cluster);
        return (mesh, backend, server, client);
    }

    private static readonly string Fault = """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: reviews, namespace: default}
        spec:
          hosts: [reviews]
          http:
          - match: [{uri: {prefix: /abort}}]
            fault: {abort: {httpStatus: 500, percentage: {value: 100}}}
            route: [{destination: {host: reviews}}]
          - route: [{destination: {host: reviews}}]
        """;

    [Fact]
    public async Task KnownMix_CountersAndLabelsEqualWhatWasSent_OnBothReporters()
    {
        var (mesh, backend, server, client) = await StartAsync(("reviews-vs.yaml", Fault));
        await using var _ = mesh;
        await using var __ = backend;
        using var http = client.Client();
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(Host + "/")).StatusCode);
        }
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(Host + "/status-if/v1/404")).StatusCode);
        }
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(HttpStatusCode.InternalServerError, (await http.GetAsync(Host + "/abort")).StatusCode);
        }

        // Metrics are recorded when a request ends, before its connection is reused: by the time the client has its
        // response the client's record is in; the server's, just after its response left — so its scrape may wait.
        var source = await PrometheusScrape.GetAsync(new Uri(client.Host.AdminAddress, "/stats/prometheus"));
        var destination = await ScrapeUntilAsync(new Uri(server.Host.StatusAddress!, "/stats/prometheus"), s => s.Sum("istio_requests_total", ("reporter", "destination")) >= 8);

        (string, string)[] workloads =
        [
            ("source_workload", "productpage-v1"), ("source_app", "productpage"), ("source_version", "v1"), ("source_workload_namespace", "default"),
            ("destination_workload", "reviews-v1"), ("destination_app", "reviews"), ("destination_version", "v1"), ("destination_workload_namespace", "default"),
            ("destination_service", "reviews.default.svc.cluster.local"), ("destination_service_name", "reviews"), ("destination_service_namespace", "default"),
            ("source_principal", "spiffe://cluster.local/ns/default/sa/productpage"), ("destination_principal", "spiffe://cluster.local/ns/default/sa/reviews"),
            ("request_protocol", "http"),
        ];
        Assert.Equal(5, source.Sum("istio_requests_total", [("reporter", "source"), ("response_code", "200"), ("response_flags", "-"), ("connection_security_policy", "unknown"), .. workloads]));
        Assert.Equal(3, source.Sum("istio_requests_total", [("reporter", "source"), ("response_code", "404"), .. workloads]));
        // The fault never left the client's sidecar: only the source reports it, flagged FI, with the service but no peer.
        Assert.Equal(2, source.Sum("istio_requests_total", ("reporter", "source"), ("response_code", "500"), ("response_flags", "FI"), ("source_workload", "productpage-v1"),
            ("destination_service", "reviews.default.svc.cluster.local"), ("destination_workload", "unknown")));
        Assert.Equal(10, source.Sum("istio_requests_total"));

        Assert.Equal(5, destination.Sum("istio_requests_total", [("reporter", "destination"), ("response_code", "200"), ("connection_security_policy", "mutual_tls"), .. workloads]));
        Assert.Equal(3, destination.Sum("istio_requests_total", [("reporter", "destination"), ("response_code", "404"), .. workloads]));
        Assert.Equal(0, destination.Sum("istio_requests_total", ("response_code", "500")));

        // Histograms count every request once, in Envoy's buckets.
        Assert.Equal(8, destination.Sum("istio_request_duration_milliseconds_count", ("reporter", "destination")));
        Assert.Equal(8, destination.Sum("istio_request_duration_milliseconds_bucket", ("reporter", "destination"), ("le", "+Inf")));
        Assert.Equal(10, source.Sum("istio_response_bytes_count"));
        Assert.Contains(source.Samples, s => s.Name == "istio_request_duration_milliseconds_bucket" && s.Labels["le"] == "0.5");

        // Envoy's own counters, in Prometheus form with their tags.
        Assert.Equal(8, source.Sum("envoy_cluster_upstream_rq_total", ("cluster_name", Cluster)));
        Assert.Equal(5, source.Sum("envoy_cluster_upstream_rq_xx", ("cluster_name", Cluster), ("envoy_response_code_class", "2")));

        // The app's metrics are merged into the status port's scrape, not the admin port's.
        Assert.Equal(42, destination.Sum("app_requests_handled_total"));
        Assert.DoesNotContain("app_requests_handled_total", (await PrometheusScrape.GetAsync(new Uri(server.Host.AdminAddress, "/stats/prometheus"))).Text, StringComparison.Ordinal);
        // The exchanged metadata reached neither app.
        Assert.DoesNotContain(backend.Headers, h => h.Contains("x-envoy-peer-metadata", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task ClientOutsideTheMesh_CannotForgeItsWorkload()
    {
        var (mesh, backend, server, client) = await StartAsync();
        await using var _ = mesh;
        await using var __ = backend;
        // A plaintext client (PERMISSIVE lets it in) claiming to be productpage-v1 with Istio's own header.
        var forged = Google.Protobuf.WellKnownTypes.Struct.Parser.ParseJson("""{"NAME": "productpage-v1", "WORKLOAD_NAME": "productpage-v1", "NAMESPACE": "default", "SERVICE_ACCOUNT": "productpage"}""");
        using var plain = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = Timeouts.Short };
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{mesh.InboundPortOf("reviews-v1")}/");
        request.Headers.Add("x-envoy-peer-metadata", Convert.ToBase64String(Google.Protobuf.MessageExtensions.ToByteArray(forged)));
        using var response = await plain.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // Nothing about the server is told to a client outside the mesh either.
        Assert.False(response.Headers.Contains("x-envoy-peer-metadata"));

        var destination = await ScrapeUntilAsync(new Uri(server.Host.AdminAddress, "/stats/prometheus"), s => s.Sum("istio_requests_total") >= 1);
        var series = Assert.Single(destination.Series("istio_requests_total", ("reporter", "destination")));
        Assert.Equal("unknown", series["source_workload"]);
        Assert.Equal("unknown", series["source_principal"]);
        Assert.Equal("none", series["connection_security_policy"]);
        Assert.DoesNotContain(backend.Headers, h => h.Contains("x-envoy-peer-metadata", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Scrapes until the condition holds (the server records a request just after its response left), bounded.</summary>
    private static async Task<PrometheusScrape> ScrapeUntilAsync(Uri url, Func<PrometheusScrape, bool> condition)
    {
        using var deadline = new CancellationTokenSource(Timeouts.Long);
        while (true)
        {
            var scrape = await PrometheusScrape.GetAsync(url);
            if (condition(scrape) || deadline.IsCancellationRequested)
            {
                return scrape;
            }
            await Task.Delay(50, deadline.Token).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }
}
