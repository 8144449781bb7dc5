namespace Bowline.Samples.Bookinfo.Reviews;

/// <summary>The body of <c>GET /reviews/{id}</c>, as Istio's reviews writes it (the id is a
/// string there too).</summary>
/// <remarks><see cref="Version"/> is not in Istio's body: it lets productpage name the version
/// that served it even when <c>POD_NAME</c> is a generated pod name, and is null when the
/// reviews service is Istio's own.</remarks>
internal sealed record ProductReviews(
    string Id,
    string Podname,
    string Clustername,
    IReadOnlyList<Review> Reviews,
    string? Version = null);
