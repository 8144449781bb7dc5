using Bowline.EndToEnd.Tests.Infrastructure;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>
/// HTTP/2 rapid reset (CVE-2023-44487's pattern): a client that opens streams and resets them must not make the
/// sidecar start an upstream request per stream, and a connection that resets most of its streams is closed.
/// </summary>
public sealed class RapidResetTests
{
    [Fact]
    public async Task StreamsResetBeforeCompletion_ConnectionIsClosedAfterTheLimit_AndOthersAreServed()
    {
        await using var backend = await TestBackend.StartAsync("v1");
        await using var mesh = await MeshHarness.StartAsync(("reviews.yaml", MeshYaml.Service("reviews", 9080)));
        await mesh.StartSidecarAsync("reviews-v1", new Dictionary<string, string> { ["app"] = "reviews" }, [("http", 9080, backend.Port)]);
        var client = await mesh.StartSidecarAsync("productpage-v1", new Dictionary<string, string> { ["app"] = "productpage" }, [], "outbound|9080||reviews.default.svc.cluster.local");
        using var attacker = client.H2Client();

        var closed = false;
        for (var round = 0; round < 10 && !closed; round++)
        {
            // 100 streams in flight on one connection (each reaches the backend), then all reset by the client at once.
            using var reset = new CancellationTokenSource();
            var before = backend.Received.Count;
            var streams = Enumerable.Range(0, 100).Select(_ => attacker.GetAsync("http://reviews:9080/slow/30000", reset.Token)).ToList();
            try
            {
                await backend.WaitUntilReceivedAsync(r => r.Count >= before + 100, Timeouts.Short);
            }
            catch (OperationCanceledException)
            {
                // The proxy closed the connection mid-round: the streams never all arrived.
                closed = true;
            }
            await reset.CancelAsync();
            var results = await Task.WhenAll(streams.Select(s => s.ContinueWith(t => t.Exception?.GetBaseException(), TaskScheduler.Default))).Within(Timeouts.Short);
            closed |= results.Any(e => e is HttpRequestException);
            closed |= client.Host.Stats.ValueOf("http.downstream_rq_too_many_premature_resets") > 0;
        }

        Assert.Equal(1, client.Host.Stats.ValueOf("http.downstream_rq_too_many_premature_resets"));
        // No more upstream requests than streams the client opened before the connection was judged.
        Assert.InRange(backend.Received.Count, 1, 600);
        using var honest = client.H2Client();
        using var response = await honest.GetAsync("http://reviews:9080/ok").Within(Timeouts.Short);
        Assert.True(response.IsSuccessStatusCode);
    }
}
