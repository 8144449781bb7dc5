using System.Globalization;
using Bowline.Samples.Bookinfo.Hosting;
using Bowline.Samples.Bookinfo.Json;

namespace Bowline.Samples.Bookinfo.Ratings;

/// <summary>ratings: <c>GET /ratings/{id}</c>; calls nothing.</summary>
internal sealed class RatingsRole : IRole
{
    public string Name => "ratings";

    public string HealthStatus => "Ratings is healthy";

    public void AddServices(IServiceCollection services)
    {
    }

    public void MapEndpoints(IEndpointRouteBuilder endpoints) =>
        endpoints.MapGet("/ratings/{id}", (string id) =>
            int.TryParse(id, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int productId)
                ? Results.Json(ProductRatings.ForProduct(productId), BookinfoJson.Context.ProductRatings)
                : Results.Json(
                    new ErrorBody("please provide numeric product ID"),
                    BookinfoJson.Context.ErrorBody,
                    statusCode: StatusCodes.Status400BadRequest));
}
