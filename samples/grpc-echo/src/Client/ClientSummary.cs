using System.Text.Json.Serialization;

namespace Bowline.Samples.GrpcEcho.Client;

/// <summary>
/// The one JSON line the client prints. Tests parse it, so field names are a contract.
/// </summary>
/// <param name="Target">The --target argument.</param>
/// <param name="Via">The --via argument as host:port, or null.</param>
/// <param name="Mode"><c>unary</c> or <c>stream</c>.</param>
/// <param name="Ok">Calls that succeeded, with every streamed message in order and the trailer present.</param>
/// <param name="Failed">Calls that did not.</param>
/// <param name="Messages">Responses received across all calls.</param>
/// <param name="Versions">Successful calls per server version (the version in the call's first response).</param>
/// <param name="MissingHeader">Calls whose response headers lacked x-echo-version.</param>
/// <param name="MissingTrailer">Calls whose trailers lacked x-echo-trailer: done.</param>
/// <param name="Errors">The first few distinct error messages.</param>
internal sealed record ClientSummary(
    string Target,
    string? Via,
    string Mode,
    int Ok,
    int Failed,
    long Messages,
    IReadOnlyDictionary<string, int> Versions,
    int MissingHeader,
    int MissingTrailer,
    IReadOnlyList<string> Errors);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ClientSummary))]
internal sealed partial class ClientSummaryJsonContext : JsonSerializerContext;
