using Bowline.Proxy.Http;
using Bowline.Proxy.Stats;

namespace Bowline.Proxy.Filters.Http.Fault;

/// <summary>
/// Envoy's fault filter at request time: a route's HTTPFault (typed_per_filter_config) replaces the filter's own.
/// The delay comes first (flag DI), then the abort (flag FI, details <c>fault_filter_abort</c>); a gRPC abort answers
/// 200 with <c>grpc-status</c>, as gRPC clients expect. <c>max_active_faults</c> bounds concurrent faults.
/// </summary>
internal sealed class FaultFilter(string name, FaultConfig config, FilterFactoryContext context) : IHttpFilter
{
    private readonly Stat _delays = context.Stats.Get(Stats.StatTag.Http(context.StatPrefix), "fault.delays_injected");
    private readonly Stat _aborts = context.Stats.Get(Stats.StatTag.Http(context.StatPrefix), "fault.aborts_injected");
    private readonly Stat _overflow = context.Stats.Get(Stats.StatTag.Http(context.StatPrefix), "fault.faults_overflow");
    private readonly Stat _active = context.Stats.Get(Stats.StatTag.Http(context.StatPrefix), "fault.active_faults");
    private int _activeFaults;

    public string Name => name;

    public async ValueTask<FilterStatus> OnRequestAsync(HttpStream stream)
    {
        var fault = stream.FilterConfig<FaultConfig>(name) ?? config;
        if (fault.IsEmpty)
        {
            return FilterStatus.Continue;
        }
        var delay = fault.Delay is { } d && fault.DelayShare.Roll(context.Random) ? d : (TimeSpan?)null;
        var abort = (fault.HttpStatus is not null || fault.GrpcStatus is not null) && fault.AbortShare.Roll(context.Random);
        if (delay is null && !abort)
        {
            return FilterStatus.Continue;
        }
        if (fault.MaxActiveFaults is { } max && Volatile.Read(ref _activeFaults) >= max)
        {
            _overflow.Increment();
            return FilterStatus.Continue;
        }
        Interlocked.Increment(ref _activeFaults);
        _active.Increment();
        try
        {
            if (delay is { } wait)
            {
                _delays.Increment();
                stream.Info.Flags |= ResponseFlags.DelayInjected;
                try
                {
                    await Task.Delay(wait, context.Time, stream.Context.RequestAborted).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    stream.Info.Flags |= ResponseFlags.DownstreamConnectionTermination;
                    return FilterStatus.Stop;
                }
            }
            if (!abort)
            {
                return FilterStatus.Continue;
            }
            _aborts.Increment();
            if (fault.GrpcStatus is { } grpc)
            {
                var response = stream.Context.Response;
                response.ContentType = "application/grpc";
                response.Headers["grpc-status"] = grpc.ToString(System.Globalization.CultureInfo.InvariantCulture);
                response.Headers["grpc-message"] = "fault filter abort";
                stream.Info.Flags |= ResponseFlags.FaultInjected;
                stream.Info.ResponseCodeDetails = "fault_filter_abort";
                stream.Info.ResponseCode = 200;
                stream.OnResponseHeaders();
                return FilterStatus.Stop;
            }
            await stream.SendLocalReplyAsync(fault.HttpStatus!.Value, "fault filter abort", ResponseFlags.FaultInjected, "fault_filter_abort").ConfigureAwait(false);
            return FilterStatus.Stop;
        }
        finally
        {
            Interlocked.Decrement(ref _activeFaults);
            _active.Decrement();
        }
    }
}
