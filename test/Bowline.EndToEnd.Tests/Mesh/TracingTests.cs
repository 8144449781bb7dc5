using System.Net;
using Microsoft.AspNetCore.Http;
using Bowline.EndToEnd.Tests.Infrastructure;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>
/// Distributed tracing through real sidecars, real mTLS and the control plane's translation of Istio's config: the
/// mesh config (istio ConfigMap) names an OTLP collector the test runs, a root Telemetry samples everything, and a
/// request from sleep to productpage, which calls reviews forwarding the trace headers as bookinfo's productpage
/// does, arrives at the collector as one trace of four spans, each hop's server span the child of its caller's
/// client span.
/// </summary>
public sealed class TracingTests
{
    private const string Collector = "otel-collector.observability.svc.cluster.local";

    /// <summary>The headers bookinfo's productpage forwards (istio's sample propagates these).</summary>
    private static readonly string[] Propagated = ["x-request-id", "traceparent", "tracestate", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags", "b3"];

    private static string MeshConfig(int collectorPort) => $$$"""
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: istio, namespace: istio-system}
        data:
          mesh: |
            extensionProviders:
            - name: otel
              opentelemetry: {service: {{{Collector}}}, port: {{{collectorPort}}}}
            defaultProviders:
              tracing: [otel]
        ---
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: otel-collector, namespace: observability}
        spec:
          hosts: [{{{Collector}}}]
          ports: [{number: {{{collectorPort}}}, name: grpc-otlp, protocol: GRPC}]
          resolution: STATIC
          endpoints: [{address: 127.0.0.1}]
        """;

    private const string SampleEverything = """
        apiVersion: telemetry.istio.io/v1
        kind: Telemetry
        metadata: {name: mesh-default, namespace: istio-system}
        spec:
          tracing: [{randomSamplingPercentage: 100, customTags: {team: {literal: {value: books}}}}]
        """;

    [Fact]
    public async Task BookinfoRequest_IsOneTrace_OfParentAndChildSpans_AtTheCollector()
    {
        await using var collector = await OtlpReceiver.StartAsync();
        await using var productpageApp = await TestBackend.StartAsync("productpage");
        await using var reviewsApp = await TestBackend.StartAsync("v1");
        await using var mesh = await MeshHarness.StartMtlsAsync(
            ("productpage.yaml", MeshYaml.Service("productpage", 9080)), ("reviews.yaml", MeshYaml.Service("reviews", 9080)), ("tracing.yaml", MeshConfig(collector.GrpcPort)), ("telemetry.yaml", SampleEverything));
        var collectorCluster = $"outbound|{collector.GrpcPort}||{Collector}";
        await mesh.StartSidecarAsync("reviews-v1", new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v1" }, [("http", 9080, reviewsApp.Port)], collectorCluster);
        var productpage = await mesh.StartSidecarAsync("productpage-v1", new Dictionary<string, string> { ["app"] = "productpage", ["version"] = "v1" }, [("http", 9080, productpageApp.Port)],
            "outbound|9080||reviews.default.svc.cluster.local", collectorCluster);
        var sleep = await mesh.StartSidecarAsync("sleep", new Dictionary<string, string> { ["app"] = "sleep" }, [], "outbound|9080||productpage.default.svc.cluster.local", collectorCluster);

        // productpage calls reviews through its own sidecar, forwarding the trace context it was given.
        using var productpageOut = productpage.Client();
        productpageApp.Handlers["/productpage"] = async context =>
        {
            using var call = new HttpRequestMessage(HttpMethod.Get, "http://reviews:9080/reviews/0");
            foreach (var header in Propagated.Where(h => context.Request.Headers.ContainsKey(h)))
            {
                call.Headers.TryAddWithoutValidation(header, context.Request.Headers[header].ToString());
            }
            using var reviews = await productpageOut.SendAsync(call);
            context.Response.StatusCode = (int)reviews.StatusCode;
            await context.Response.WriteAsync(await reviews.Content.ReadAsStringAsync());
        };

        using var http = sleep.Client();
        using var response = await http.GetAsync("http://productpage:9080/productpage");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var spans = await collector.WaitForSpansAsync(4);
        Assert.Equal(4, spans.Count);
        Assert.Single(spans.Select(s => s.TraceId).Distinct());
        var sleepClient = Assert.Single(spans, s => s.ServiceName == "sleep.default" && s.Kind == ReceivedSpan.KindClient);
        var productpageServer = Assert.Single(spans, s => s.ServiceName == "productpage.default" && s.Kind == ReceivedSpan.KindServer);
        var productpageClient = Assert.Single(spans, s => s.ServiceName == "productpage.default" && s.Kind == ReceivedSpan.KindClient);
        var reviewsServer = Assert.Single(spans, s => s.ServiceName == "reviews.default" && s.Kind == ReceivedSpan.KindServer);

        // The chain: sleep's request is the root, each hop's server span the child of its caller's client span.
        Assert.Equal("", sleepClient.ParentSpanId);
        Assert.Equal(sleepClient.SpanId, productpageServer.ParentSpanId);
        Assert.Equal(productpageServer.SpanId, productpageClient.ParentSpanId);
        Assert.Equal(productpageClient.SpanId, reviewsServer.ParentSpanId);

        // Istio's operation names (route decorators) and span tags.
        Assert.Equal("productpage.default.svc.cluster.local:9080/*", sleepClient.Name);
        Assert.Equal("productpage.default.svc.cluster.local:9080/*", productpageServer.Name);
        Assert.Equal("reviews.default.svc.cluster.local:9080/*", productpageClient.Name);
        Assert.Equal("reviews.default.svc.cluster.local:9080/*", reviewsServer.Name);
        Assert.Equal("outbound|9080||reviews.default.svc.cluster.local", productpageClient.Attributes["upstream_cluster"]);
        Assert.Equal(["productpage", "productpage", "reviews", "sleep"], spans.Select(s => s.Attributes["istio.canonical_service"]).Order(StringComparer.Ordinal));
        Assert.All(spans, s => Assert.Equal(("200", "books", "default"), (s.Attributes["http.status_code"], s.Attributes["team"], s.Attributes["istio.namespace"])));
        // One x-request-id end to end, generated at the first sidecar.
        Assert.Single(spans.Select(s => s.Attributes["guid:x-request-id"]).Distinct());
    }
}
