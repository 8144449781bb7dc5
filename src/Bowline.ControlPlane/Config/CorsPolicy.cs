namespace Bowline.ControlPlane.Config;

/// <summary>Istio's <c>CorsPolicy</c>.</summary>
/// <param name="MaxAge">Whole seconds, as the Access-Control-Max-Age header carries it.</param>
/// <param name="ForwardUnmatchedPreflights">Istio's unmatchedPreflights: FORWARD (the default) or IGNORE (answered by the proxy).</param>
internal sealed record CorsPolicy(
    IReadOnlyList<StringMatch> AllowOrigins,
    IReadOnlyList<string> AllowMethods,
    IReadOnlyList<string> AllowHeaders,
    IReadOnlyList<string> ExposeHeaders,
    TimeSpan? MaxAge,
    bool? AllowCredentials,
    bool ForwardUnmatchedPreflights);
