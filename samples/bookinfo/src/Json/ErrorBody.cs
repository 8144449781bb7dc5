namespace Bowline.Samples.Bookinfo.Json;

/// <summary>Istio's error body: <c>{"error":"Sorry, ..."}</c>.</summary>
internal sealed record ErrorBody(string Error);
