using Bowline.Proxy.Xds;
using Bowline.Xds;
using Microsoft.Extensions.Time.Testing;

namespace Bowline.Proxy.Tests.Xds;

public sealed class StreamProgressTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public void Queued_SubscriptionUnansweredForTheTimeout_StallsOnce()
    {
        var time = new FakeTimeProvider();
        var stalls = 0;
        using var progress = new StreamProgress(time, Timeout, () => stalls++);

        progress.Queued(TypeUrls.ClusterLoadAssignment, expectsResponse: true);
        progress.Written();
        time.Advance(Timeout - TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, stalls);
        time.Advance(TimeSpan.FromMilliseconds(1));
        time.Advance(Timeout * 3);

        Assert.Equal(1, stalls);
        Assert.True(progress.Stalled);
        Assert.Contains("EDS", progress.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void Received_AnyType_RestartsTheClock()
    {
        var time = new FakeTimeProvider();
        var stalls = 0;
        using var progress = new StreamProgress(time, Timeout, () => stalls++);
        progress.Queued(TypeUrls.RouteConfiguration, expectsResponse: true);

        time.Advance(TimeSpan.FromSeconds(40));
        progress.Received(TypeUrls.ClusterLoadAssignment);
        time.Advance(TimeSpan.FromSeconds(40));
        Assert.Equal(0, stalls);
        time.Advance(TimeSpan.FromSeconds(20));

        Assert.Equal(1, stalls);
    }

    [Fact]
    public void LocalWork_IsNotCountedAgainstTheStream()
    {
        var time = new FakeTimeProvider();
        var stalls = 0;
        using var progress = new StreamProgress(time, Timeout, () => stalls++);
        progress.Queued(TypeUrls.Listener, expectsResponse: true);

        progress.BeginLocalWork();
        time.Advance(Timeout * 2);
        progress.EndLocalWork();
        time.Advance(Timeout - TimeSpan.FromSeconds(1));
        Assert.Equal(0, stalls);
        time.Advance(TimeSpan.FromSeconds(1));

        Assert.Equal(1, stalls);
    }

    [Fact]
    public void WrittenAndAnswered_IdleStreamNeverStalls()
    {
        var time = new FakeTimeProvider();
        var stalls = 0;
        using var progress = new StreamProgress(time, Timeout, () => stalls++);
        progress.Queued(TypeUrls.Cluster, expectsResponse: true);
        progress.Written();
        progress.Received(TypeUrls.Cluster);
        progress.Queued(TypeUrls.Cluster, expectsResponse: false);
        progress.Written();

        time.Advance(TimeSpan.FromMinutes(30));

        Assert.Equal(0, stalls);
        Assert.False(progress.Stalled);
    }

    [Fact]
    public void Queued_WriteNeverCompletes_Stalls()
    {
        var time = new FakeTimeProvider();
        var stalls = 0;
        using var progress = new StreamProgress(time, Timeout, () => stalls++);

        // An ACK expects no response, but while it cannot be written the stream owes us.
        progress.Queued(TypeUrls.Cluster, expectsResponse: false);
        time.Advance(Timeout);

        Assert.Equal(1, stalls);
        Assert.Contains("1 request(s) not yet written", progress.Describe(), StringComparison.Ordinal);
    }
}
