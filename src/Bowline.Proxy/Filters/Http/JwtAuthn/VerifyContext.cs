using Bowline.Proxy.Http;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.Proxy.Filters.Http.JwtAuthn;

/// <summary>
/// One request's verification: the stream whose headers the verifiers read and change, the clock reading every
/// token is judged by, and what verified tokens publish once the requirement is decided.
/// </summary>
/// <remarks>Owned by one request; not thread-safe.</remarks>
internal sealed class VerifyContext(HttpStream stream, long nowUnixSeconds)
{
    public HttpStream Stream { get; } = stream;

    /// <summary>Now, in Unix seconds, read once per request.</summary>
    public long Now { get; } = nowUnixSeconds;

    /// <summary>Reused by each verifier for the tokens it extracts.</summary>
    public List<ExtractedToken> Tokens { get; } = [];

    /// <summary>Verified headers and payloads by their metadata key, in the order they were verified; null until one is.</summary>
    public List<(string Key, Struct Value)>? Extracted { get; private set; }

    /// <summary>A provider with <c>clear_route_cache</c> changed what routing may see.</summary>
    public bool ClearRouteCache { get; set; }

    public void AddExtracted(string key, Struct value) => (Extracted ??= []).Add((key, value));
}
