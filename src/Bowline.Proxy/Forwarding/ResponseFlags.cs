namespace Bowline.Proxy.Forwarding;

/// <summary>Envoy's response flags, the short codes operators grep access logs for.</summary>
internal static class ResponseFlags
{
    /// <summary>No route matched: 404.</summary>
    public const string NoRoute = "NR";

    /// <summary>The route's cluster does not exist: 503.</summary>
    public const string NoClusterFound = "NC";

    /// <summary>No healthy upstream host: 503.</summary>
    public const string NoHealthyUpstream = "UH";

    /// <summary>Upstream connection failure: 503.</summary>
    public const string UpstreamConnectionFailure = "UF";

    /// <summary>Upstream request timeout (the route timeout): 504.</summary>
    public const string UpstreamRequestTimeout = "UT";

    /// <summary>Upstream reset before or during the response: 503.</summary>
    public const string UpstreamRemoteReset = "UR";

    /// <summary>The downstream client went away.</summary>
    public const string DownstreamConnectionTermination = "DC";

    /// <summary>The response header a locally generated error carries, so a client (or a test) can tell the proxy answered, and why.</summary>
    public const string Header = "x-bowline-response-flags";
}
