using Bowline.Samples.Bookinfo.Upstreams;

namespace Bowline.Samples.Bookinfo.ProductPage;

/// <summary>productpage's calls to details, reviews and ratings, with Istio's application
/// timeouts and its one retry on reviews.</summary>
internal sealed class ProductBackends(UpstreamClient upstream, BackendAddresses addresses)
{
    public const string DetailsUnavailable = "Sorry, product details are currently unavailable for this book.";
    public const string ReviewsUnavailable = "Sorry, product reviews are currently unavailable for this book.";
    public const string RatingsUnavailable = "Sorry, product ratings are currently unavailable for this book.";

    /// <summary>Istio's productpage gives every call 3 s.</summary>
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(3);

    /// <summary>Istio keeps this "bug" on purpose: two 3 s attempts make productpage give up on
    /// reviews after about 6 s, before reviews v2's 10 s ratings timeout, which is what the
    /// fault-injection task demonstrates.</summary>
    private const int ReviewsAttempts = 2;

    public async Task<BackendResult> GetDetailsAsync(
        string productId, OutgoingHeaders headers, CancellationToken cancellationToken)
    {
        Uri url = ServiceAddress.Resolve(addresses.Details, "details", productId);
        UpstreamResponse response = await upstream.GetAsync(url, headers, CallTimeout, cancellationToken);
        return BackendResult.From(response, DetailsUnavailable);
    }

    public async Task<BackendResult> GetReviewsAsync(
        string productId, OutgoingHeaders headers, CancellationToken cancellationToken)
    {
        Uri url = ServiceAddress.Resolve(addresses.Reviews, "reviews", productId);
        UpstreamResponse response = UpstreamResponse.NoResponse;
        for (int attempt = 0; attempt < ReviewsAttempts && !response.IsOk; attempt++)
        {
            response = await upstream.GetAsync(url, headers, CallTimeout, cancellationToken);
        }

        return BackendResult.From(response, ReviewsUnavailable);
    }

    public async Task<BackendResult> GetRatingsAsync(
        string productId, OutgoingHeaders headers, CancellationToken cancellationToken)
    {
        Uri url = ServiceAddress.Resolve(addresses.Ratings, "ratings", productId);
        UpstreamResponse response = await upstream.GetAsync(url, headers, CallTimeout, cancellationToken);
        return BackendResult.From(response, RatingsUnavailable);
    }
}
