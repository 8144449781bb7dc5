namespace Bowline.ControlPlane.Config;

/// <summary>Istio's <c>Headers.HeaderOperations</c> for one direction: set overwrites, add appends, remove deletes.</summary>
internal sealed record HeaderOperation(
    IReadOnlyList<KeyValuePair<string, string>> Set,
    IReadOnlyList<KeyValuePair<string, string>> Add,
    IReadOnlyList<string> Remove)
{
    public static readonly HeaderOperation None = new([], [], []);
}

/// <summary>Istio's <c>Headers</c>: operations on the request (before it goes upstream) and the response.</summary>
internal sealed record HeaderOperations(HeaderOperation Request, HeaderOperation Response);
