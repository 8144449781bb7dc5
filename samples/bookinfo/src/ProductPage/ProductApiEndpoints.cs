using Bowline.Samples.Bookinfo.Json;
using Bowline.Samples.Bookinfo.Upstreams;

namespace Bowline.Samples.Bookinfo.ProductPage;

/// <summary><c>/api/v1/products...</c>: the store's JSON API. Each call passes the backend's
/// JSON through, or its status with Istio's error body.</summary>
internal static class ProductApiEndpoints
{
    public static void Map(IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/api/v1/products", () =>
            Results.Json(Product.Catalog, BookinfoJson.Context.IReadOnlyListProduct));

        endpoints.MapGet("/api/v1/products/{id}", async (string id, HttpRequest request, ProductBackends backends, CancellationToken cancellationToken) =>
            (await backends.GetDetailsAsync(id, HeadersFor(request), cancellationToken)).ToHttpResult());

        endpoints.MapGet("/api/v1/products/{id}/reviews", async (string id, HttpRequest request, ProductBackends backends, CancellationToken cancellationToken) =>
            (await backends.GetReviewsAsync(id, HeadersFor(request), cancellationToken)).ToHttpResult());

        endpoints.MapGet("/api/v1/products/{id}/ratings", async (string id, HttpRequest request, ProductBackends backends, CancellationToken cancellationToken) =>
            (await backends.GetRatingsAsync(id, HeadersFor(request), cancellationToken)).ToHttpResult());
    }

    private static OutgoingHeaders HeadersFor(HttpRequest request) =>
        OutgoingHeaders.From(request, PageUser.Get(request));
}
