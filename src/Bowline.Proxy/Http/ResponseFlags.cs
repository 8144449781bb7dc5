namespace Bowline.Proxy.Http;

/// <summary>
/// Envoy's response flags, the short codes operators grep access logs for. A request may carry several; they print in
/// Envoy's order, comma-separated (<c>UF,URX</c>), and <c>-</c> when none is set.
/// </summary>
[Flags]
internal enum ResponseFlags
{
    None = 0,

    /// <summary>UH: no healthy upstream host (503).</summary>
    NoHealthyUpstream = 1 << 0,

    /// <summary>UF: the upstream connection failed (503).</summary>
    UpstreamConnectionFailure = 1 << 1,

    /// <summary>UO: a circuit breaker overflowed (503).</summary>
    UpstreamOverflow = 1 << 2,

    /// <summary>NR: no route, or no filter chain (404).</summary>
    NoRouteFound = 1 << 3,

    /// <summary>URX: rejected because the retry limit or the retry budget was reached.</summary>
    UpstreamRetryLimitExceeded = 1 << 4,

    /// <summary>NC: the route's cluster does not exist (503).</summary>
    NoClusterFound = 1 << 5,

    /// <summary>DC: the downstream client went away.</summary>
    DownstreamConnectionTermination = 1 << 6,

    /// <summary>UT: the route timeout (or the last per-try timeout) fired (504).</summary>
    UpstreamRequestTimeout = 1 << 7,

    /// <summary>LR: the proxy reset the connection locally, in addition to the 503 it answered.</summary>
    LocalReset = 1 << 8,

    /// <summary>UR: the upstream reset the stream (503).</summary>
    UpstreamRemoteReset = 1 << 9,

    /// <summary>DI: a fault filter delayed the request.</summary>
    DelayInjected = 1 << 10,

    /// <summary>FI: a fault filter aborted the request.</summary>
    FaultInjected = 1 << 11,

    /// <summary>RL: a local rate limit rejected the request (429).</summary>
    RateLimited = 1 << 12,

    /// <summary>DPE: the downstream request did not parse (400).</summary>
    DownstreamProtocolError = 1 << 13,
}

/// <summary>Formatting of <see cref="ResponseFlags"/> in Envoy's short codes.</summary>
internal static class ResponseFlagCodes
{
    /// <summary>The response header a locally generated error carries, so a client (or a test) can tell the proxy answered, and why.</summary>
    public const string Header = "x-bowline-response-flags";

    // Envoy's print order (source/common/stream_info/utility.cc): the order of the enum above.
    private static readonly (ResponseFlags Flag, string Code)[] Codes =
    [
        (ResponseFlags.NoHealthyUpstream, "UH"),
        (ResponseFlags.UpstreamConnectionFailure, "UF"),
        (ResponseFlags.UpstreamOverflow, "UO"),
        (ResponseFlags.NoRouteFound, "NR"),
        (ResponseFlags.UpstreamRetryLimitExceeded, "URX"),
        (ResponseFlags.NoClusterFound, "NC"),
        (ResponseFlags.DownstreamConnectionTermination, "DC"),
        (ResponseFlags.UpstreamRequestTimeout, "UT"),
        (ResponseFlags.LocalReset, "LR"),
        (ResponseFlags.UpstreamRemoteReset, "UR"),
        (ResponseFlags.DelayInjected, "DI"),
        (ResponseFlags.FaultInjected, "FI"),
        (ResponseFlags.RateLimited, "RL"),
        (ResponseFlags.DownstreamProtocolError, "DPE"),
    ];

    /// <summary>The single flags (one bit each) and their codes, for stats named after every flag.</summary>
    public static IReadOnlyList<(ResponseFlags Flag, string Code)> All => Codes;

    public static string Format(ResponseFlags flags)
    {
        if (flags == ResponseFlags.None)
        {
            return "-";
        }
        // The common single-flag case returns a constant string: no allocation.
        foreach (var (flag, code) in Codes)
        {
            if (flags == flag)
            {
                return code;
            }
        }
        return string.Join(',', Codes.Where(c => (flags & c.Flag) != 0).Select(c => c.Code));
    }
}
