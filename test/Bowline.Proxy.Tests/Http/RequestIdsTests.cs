using Bowline.Proxy.Http;

namespace Bowline.Proxy.Tests.Http;

/// <summary>Generated x-request-ids are RFC 9562 version 4 UUIDs, distinct across a block refill and across threads.</summary>
public sealed class RequestIdsTests
{
    [Fact]
    public void Next_IsAVersion4Uuid()
    {
        var id = RequestIds.Next();

        Assert.Matches("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", id);
    }

    [Fact]
    public async Task Next_NeverRepeats_AcrossBlocksAndThreads()
    {
        // 4 threads × 1,000 ids cross several 256-id blocks per thread; 122 random bits make a collision impossible
        // in practice (p < 1e-29), so a repeat means blocks or threads share bytes.
        var ids = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Factory.StartNew(
            () => Enumerable.Range(0, 1000).Select(_ => RequestIds.Next()).ToArray(), TaskCreationOptions.LongRunning)))
            .WaitAsync(TimeSpan.FromSeconds(30));

        var all = ids.SelectMany(x => x).ToList();
        Assert.Equal(all.Count, all.Distinct().Count());
    }
}
