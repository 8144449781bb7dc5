using Bowline.Proxy.Configuration;
using Envoy.Extensions.Filters.Http.Fault.V3;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.Proxy.Filters.Http.Fault;

/// <summary><c>envoy.filters.http.fault</c>: delays and aborts a share of requests (Istio's VirtualService <c>fault</c>).</summary>
internal sealed class FaultFilterFactory : IHttpFilterFactory
{
    public const string TypeUrl = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";

    public string ConfigTypeUrl => TypeUrl;

    public string? PerRouteTypeUrl => TypeUrl;

    public IHttpFilter Create(string name, Any config, FilterFactoryContext context, string where) =>
        new FaultFilter(name, Compile(config, where), context);

    public object CompilePerRoute(Any config, string where) => Compile(config, where);

    private static FaultConfig Compile(Any any, string where)
    {
        var proto = any.Unpack<HTTPFault>();
        XdsFields.Check(proto, where, "delay", "abort", "max_active_faults");
        TimeSpan? delay = null;
        var delayShare = Fraction.None;
        if (proto.Delay is { } d)
        {
            XdsFields.Check(d, where + " delay", "fixed_delay", "percentage");
            if (d.FixedDelay is null)
            {
                throw new ProxyConfigException($"{where}: delay.header_delay is not supported; use fixed_delay");
            }
            delay = d.FixedDelay.ToTimeSpan();
            if (delay < TimeSpan.Zero)
            {
                throw new ProxyConfigException($"{where}: delay.fixed_delay must not be negative");
            }
            delayShare = Fraction.From(d.Percentage, Fraction.All, where + " delay.percentage");
        }
        int? httpStatus = null, grpcStatus = null;
        var abortShare = Fraction.None;
        if (proto.Abort is { } a)
        {
            XdsFields.Check(a, where + " abort", "http_status", "grpc_status", "percentage");
            switch (a.ErrorTypeCase)
            {
                case Envoy.Extensions.Filters.Http.Fault.V3.FaultAbort.ErrorTypeOneofCase.HttpStatus when a.HttpStatus is >= 200 and < 600:
                    httpStatus = (int)a.HttpStatus;
                    break;
                case Envoy.Extensions.Filters.Http.Fault.V3.FaultAbort.ErrorTypeOneofCase.GrpcStatus:
                    grpcStatus = (int)a.GrpcStatus;
                    break;
                default:
                    throw new ProxyConfigException($"{where}: abort needs http_status (200-599) or grpc_status; header_abort is not supported");
            }
            abortShare = Fraction.From(a.Percentage, Fraction.All, where + " abort.percentage");
        }
        return new FaultConfig(delay, delayShare, httpStatus, grpcStatus, abortShare, proto.MaxActiveFaults is { } max ? (int)max : null);
    }
}

/// <summary>A compiled HTTPFault: what to inject and for what share of requests.</summary>
internal sealed record FaultConfig(TimeSpan? Delay, Fraction DelayShare, int? HttpStatus, int? GrpcStatus, Fraction AbortShare, int? MaxActiveFaults)
{
    public bool IsEmpty => Delay is null && HttpStatus is null && GrpcStatus is null;
}
