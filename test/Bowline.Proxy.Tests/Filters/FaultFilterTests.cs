using Bowline.Proxy.Configuration;
using Bowline.Proxy.Filters.Http;
using Bowline.Proxy.Filters.Http.Fault;
using Bowline.Proxy.Http;
using Bowline.Proxy.Stats;
using Bowline.Proxy.Tests.Infrastructure;
using Envoy.Extensions.Filters.Http.Fault.V3;
using Envoy.Type.V3;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using CommonFault = Envoy.Extensions.Filters.Common.Fault.V3;

namespace Bowline.Proxy.Tests.Filters;

public sealed class FaultFilterTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly ProxyStats _stats = new();

    private IHttpFilter Create(HTTPFault fault, Random? random = null) =>
        new FaultFilterFactory().Create("envoy.filters.http.fault", Any.Pack(fault), new FilterFactoryContext(_stats, _time, random ?? new Random(42), NullLoggerFactory.Instance, "test"), "listener l http filter fault");

    private static HTTPFault Abort(uint status, uint percent) => new()
    {
        Abort = new FaultAbort { HttpStatus = status, Percentage = new FractionalPercent { Numerator = percent, Denominator = FractionalPercent.Types.DenominatorType.Hundred } },
    };

    [Fact]
    public async Task Abort100Percent_AnswersTheStatusLocally_FlaggedFI()
    {
        var filter = Create(Abort(503, 100));
        var stream = Streams.Create(_time);

        var status = await filter.OnRequestAsync(stream);

        Assert.Equal(FilterStatus.Stop, status);
        Assert.Equal(503, stream.Context.Response.StatusCode);
        Assert.Equal(ResponseFlags.FaultInjected, stream.Info.Flags);
        Assert.Equal("fault_filter_abort", stream.Info.ResponseCodeDetails);
        Assert.Equal(1, _stats.ValueOf("http.test.fault.aborts_injected"));
    }

    [Fact]
    public async Task Abort30Percent_SeededRolls_AbortAboutThatShare()
    {
        var filter = Create(Abort(500, 30), new Random(7));
        var aborted = 0;

        for (var i = 0; i < 10_000; i++)
        {
            aborted += await filter.OnRequestAsync(Streams.Create(_time)) == FilterStatus.Stop ? 1 : 0;
        }

        // Binomial sd is 46 for 10,000 rolls at 30%: ±300 is six and a half of them.
        Assert.InRange(aborted, 2700, 3300);
    }

    [Fact]
    public async Task GrpcAbort_Answers200WithGrpcStatus()
    {
        var filter = Create(new HTTPFault { Abort = new FaultAbort { GrpcStatus = 14, Percentage = new FractionalPercent { Numerator = 100 } } });
        var stream = Streams.Create(_time);

        await filter.OnRequestAsync(stream);

        Assert.Equal(200, stream.Context.Response.StatusCode);
        Assert.Equal("14", stream.Context.Response.Headers["grpc-status"].ToString());
        Assert.Equal("application/grpc", stream.Context.Response.ContentType);
    }

    [Fact]
    public async Task Delay_WaitsOnTheInjectedClock_ThenContinues_FlaggedDI()
    {
        var filter = Create(new HTTPFault { Delay = new CommonFault.FaultDelay { FixedDelay = Duration.FromTimeSpan(TimeSpan.FromSeconds(7)), Percentage = new FractionalPercent { Numerator = 100 } } });
        var stream = Streams.Create(_time);

        var running = filter.OnRequestAsync(stream).AsTask();
        Assert.False(running.IsCompleted);
        _time.Advance(TimeSpan.FromSeconds(7));
        var status = await running.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(FilterStatus.Continue, status);
        Assert.Equal(ResponseFlags.DelayInjected, stream.Info.Flags);
    }

    [Fact]
    public async Task MaxActiveFaults_Reached_LetsTheRequestThrough()
    {
        var fault = new HTTPFault
        {
            Delay = new CommonFault.FaultDelay { FixedDelay = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)), Percentage = new FractionalPercent { Numerator = 100 } },
            MaxActiveFaults = 1,
        };
        var filter = Create(fault);

        var first = filter.OnRequestAsync(Streams.Create(_time)).AsTask();
        var second = await filter.OnRequestAsync(Streams.Create(_time));
        _time.Advance(TimeSpan.FromSeconds(1));
        await first.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(FilterStatus.Continue, second);
        Assert.Equal(1, _stats.ValueOf("http.test.fault.faults_overflow"));
    }

    [Theory]
    [InlineData(9000u)]
    [InlineData(100u)]
    public void Compile_AbortStatusOutOfRange_IsRejectedNamingTheFilter(uint status)
    {
        var error = Assert.Throws<ProxyConfigException>(() => Create(Abort(status, 100)));

        Assert.Contains("http filter fault", error.Message, StringComparison.Ordinal);
        Assert.Contains("http_status", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_UnsupportedField_IsRejectedNamingIt()
    {
        var fault = Abort(503, 100);
        fault.UpstreamCluster = "reviews";

        var error = Assert.Throws<ProxyConfigException>(() => Create(fault));

        Assert.Contains("upstream_cluster", error.Message, StringComparison.Ordinal);
    }
}
