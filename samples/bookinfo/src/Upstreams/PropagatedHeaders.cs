namespace Bowline.Samples.Bookinfo.Upstreams;

/// <summary>The request headers every bookinfo service copies from its incoming request onto
/// each outgoing call, as Istio's bookinfo does.</summary>
/// <remarks>The trace headers let the mesh stitch one trace across hops; <c>end-user</c> and
/// <c>cookie</c> carry the logged-in user, which the routing tasks match on at every hop.</remarks>
internal static class PropagatedHeaders
{
    public const string EndUser = "end-user";

    public static IReadOnlyList<string> Names { get; } =
    [
        "x-request-id",
        "traceparent",
        "tracestate",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-parentspanid",
        "x-b3-sampled",
        "x-b3-flags",
        "b3",
        "x-ot-span-context",
        EndUser,
        "user-agent",
        "cookie",
    ];
}
