using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Bowline.Samples.Bookinfo.Json;
using Bowline.Samples.Bookinfo.Upstreams;

namespace Bowline.Samples.Bookinfo.ProductPage;

/// <summary>What productpage got from a backend, ready for both the API (status and JSON) and
/// the page (<see cref="Error"/> is the sentence the page shows).</summary>
internal sealed record BackendResult(int StatusCode, string Json, string? Error)
{
    /// <summary>Istio's productpage rule: a 200 passes through; otherwise the backend's status
    /// (500 when there was no response) with <c>{"error": unavailable}</c>.</summary>
    public static BackendResult From(UpstreamResponse response, string unavailable)
    {
        if (response.IsOk)
        {
            return new BackendResult(200, response.Body!, null);
        }

        string json = JsonSerializer.Serialize(new ErrorBody(unavailable), BookinfoJson.Context.ErrorBody);
        return new BackendResult(response.StatusCode ?? 500, json, unavailable);
    }

    /// <summary>The body as <typeparamref name="T"/>, or null when the call failed or the body
    /// does not parse (the page then shows the unavailable sentence).</summary>
    public T? Read<T>(JsonTypeInfo<T> typeInfo)
        where T : class
    {
        if (Error is not null)
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(Json, typeInfo);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public IResult ToHttpResult() => Results.Content(Json, "application/json", statusCode: StatusCode);
}
