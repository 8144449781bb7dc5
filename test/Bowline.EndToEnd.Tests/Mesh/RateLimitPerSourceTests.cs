using System.Net;
using Bowline.EndToEnd.Tests.Infrastructure;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>
/// A RateLimit's <c>perSource</c> through real sidecars, real mTLS and the real CA: the service's own sidecar keeps a
/// bucket per calling identity, as the certificate proves it, so one caller running out leaves another untouched, and
/// an override gives one identity a bigger bucket.
/// </summary>
public sealed class RateLimitPerSourceTests
{
    private const string Host = "http://reviews:9080";
    private const string Cluster = "outbound|9080||reviews.default.svc.cluster.local";

    [Fact]
    public async Task PerSource_EachCallingIdentityHasItsOwnBucket_AtTheServicesSidecar()
    {
        await using var backend = await TestBackend.StartAsync("v1");
        await using var mesh = await MeshHarness.StartMtlsAsync(("reviews.yaml", MeshYaml.Service("reviews", 9080)), ("reviews-rl.yaml", """
            apiVersion: bowline.dev/v1alpha1
            kind: RateLimit
            metadata: {name: reviews-per-caller, namespace: default}
            spec:
              host: reviews
              perSource:
                # An hour between fills: nothing refills while the test runs, so the counts are exact.
                tokenBucket: {maxTokens: 2, tokensPerFill: 2, fillInterval: 1h}
                overrides:
                - principal: cluster.local/ns/default/sa/productpage
                  tokenBucket: {maxTokens: 4, tokensPerFill: 4, fillInterval: 1h}
            """));
        var server = await mesh.StartSidecarAsync("reviews-v1", new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v1" }, [("http", 9080, backend.Port)]);
        // The callers are registered workloads (a WorkloadEntry each, as bowline up writes them): the identities the
        // control plane gives buckets to. A port each makes the harness register them; nothing calls those ports.
        var productpage = await mesh.StartSidecarAsync("productpage-v1", new Dictionary<string, string> { ["app"] = "productpage", ["version"] = "v1" }, [("http", 9080, backend.Port)], Cluster);
        var details = await mesh.StartSidecarAsync("details-v1", new Dictionary<string, string> { ["app"] = "details", ["version"] = "v1" }, [("http", 9080, backend.Port)], Cluster);
        // Every identity's bucket is in the server's config before any call: a later push would start them all full again.
        await WaitForConfigAsync(server, "spiffe://cluster.local/ns/default/sa/details");

        using var fromProductpage = productpage.Client();
        using var fromDetails = details.Client();
        var productpageCodes = new List<HttpStatusCode>();
        for (var i = 0; i < 6; i++)
        {
            using var response = await fromProductpage.GetAsync(Host + "/").Within(Timeouts.Short);
            productpageCodes.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                Assert.Equal("0", response.Headers.GetValues("x-ratelimit-remaining").Single());
            }
        }
        var detailsCodes = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            using var response = await fromDetails.GetAsync(Host + "/").Within(Timeouts.Short);
            detailsCodes.Add(response.StatusCode);
        }

        // productpage's override of 4, then 429s; details, an identity with the default size, still has its own 2.
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests], productpageCodes);
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], detailsCodes);
        // Limited at the service's sidecar, never at the callers', and the app saw only the admitted calls.
        Assert.Equal(3, server.Host.Stats.ValueOf("http_local_rate_limiter.http_local_rate_limit.rate_limited"));
        Assert.Equal(0, productpage.Host.Stats.ValueOf("http_local_rate_limiter.http_local_rate_limit.rate_limited"));
        Assert.Equal(6, backend.Received.Count);
    }

    /// <summary>Polls the sidecar's config dump until it mentions <paramref name="text"/>, bounded.</summary>
    private static async Task WaitForConfigAsync(Sidecar sidecar, string text)
    {
        using var admin = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = Timeouts.Short };
        using var deadline = new CancellationTokenSource(Timeouts.Long);
        while (!(await admin.GetStringAsync(new Uri(sidecar.Host.AdminAddress, "/config_dump"), deadline.Token)).Contains(text, StringComparison.Ordinal))
        {
            await Task.Delay(50, deadline.Token);
        }
    }
}
