using Bowline.Proxy.Filters.Http.Router;
using Bowline.Proxy.Http;
using Bowline.Proxy.Tests.Infrastructure;

namespace Bowline.Proxy.Tests.Filters;

public sealed class CountedResponseContentTests
{
    [Fact]
    public async Task ReadToEnd_StreamedBody_CountsEveryByteIntoTheRecord()
    {
        var info = new RequestInfo();
        var body = new byte[100_000];
        using var content = new CountedResponseContent(new StreamContent(new MemoryStream(body)), info);

        await using var stream = await content.ReadAsStreamAsync(Timeouts.Token());
        await stream.CopyToAsync(Stream.Null, 4096, Timeouts.Token());

        Assert.Equal(body.Length, info.BytesSent);
        Assert.Null(content.Headers.ContentLength);
    }
}
