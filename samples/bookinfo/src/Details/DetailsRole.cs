using System.Globalization;
using Bowline.Samples.Bookinfo.Hosting;
using Bowline.Samples.Bookinfo.Json;

namespace Bowline.Samples.Bookinfo.Details;

/// <summary>details: <c>GET /details/{id}</c>; calls nothing.</summary>
internal sealed class DetailsRole : IRole
{
    public string Name => "details";

    public string HealthStatus => "Details is healthy";

    public void AddServices(IServiceCollection services)
    {
    }

    public void MapEndpoints(IEndpointRouteBuilder endpoints) =>
        endpoints.MapGet("/details/{id}", (string id) =>
            int.TryParse(id, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int productId)
                ? Results.Json(BookDetails.ForProduct(productId), BookinfoJson.Context.BookDetails)
                : Results.Json(
                    new ErrorBody("please provide numeric product id"),
                    BookinfoJson.Context.ErrorBody,
                    statusCode: StatusCodes.Status400BadRequest));
}
