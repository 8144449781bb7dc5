using Bowline.Samples.Bookinfo.Hosting;
using Bowline.Samples.Bookinfo.Upstreams;

namespace Bowline.Samples.Bookinfo.Reviews;

/// <summary>reviews v1/v2/v3: <c>GET /reviews/{id}</c>; v2 and v3 call ratings.</summary>
internal sealed class ReviewsRole : IRole
{
    public string Name => "reviews";

    public string HealthStatus => "Reviews is healthy";

    public void AddServices(IServiceCollection services) =>
        services
            .AddSingleton(ReviewsSettings.FromEnvironment())
            .AddUpstreams()
            .AddSingleton<RatingsLookup>()
            .AddSingleton<ReviewsEndpoint>();

    public void MapEndpoints(IEndpointRouteBuilder endpoints) =>
        endpoints.MapGet(
            "/reviews/{productId:int}",
            (int productId, HttpRequest request, ReviewsEndpoint endpoint, CancellationToken cancellationToken) =>
                endpoint.GetAsync(productId, request, cancellationToken));
}
