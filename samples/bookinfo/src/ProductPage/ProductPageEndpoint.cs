using Bowline.Samples.Bookinfo.Json;
using Bowline.Samples.Bookinfo.Upstreams;

namespace Bowline.Samples.Bookinfo.ProductPage;

/// <summary><c>GET /productpage</c>: product 0 with its details and reviews. Always 200; a
/// backend that fails turns into Istio's "Sorry, ..." sentence in its part of the page.</summary>
internal static class ProductPageEndpoint
{
    private const string ProductId = "0";

    public static async Task<IResult> GetAsync(
        HttpRequest request, ProductBackends backends, CancellationToken cancellationToken)
    {
        string? user = PageUser.Get(request);
        OutgoingHeaders headers = OutgoingHeaders.From(request, user);

        // One after the other, as Istio's productpage calls them.
        BackendResult details = await backends.GetDetailsAsync(ProductId, headers, cancellationToken);
        BackendResult reviews = await backends.GetReviewsAsync(ProductId, headers, cancellationToken);

        var bookDetails = details.Read(BookinfoJson.Context.BookDetails);
        var productReviews = reviews.Read(BookinfoJson.Context.ProductReviews);
        var model = new ProductPageModel(
            Product.Catalog[0],
            user,
            bookDetails,
            bookDetails is null ? ProductBackends.DetailsUnavailable : null,
            productReviews,
            productReviews is null ? ProductBackends.ReviewsUnavailable : null);

        return Results.Content(ProductPageHtml.Render(model), "text/html; charset=utf-8");
    }
}
