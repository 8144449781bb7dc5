using Bowline.Samples.Bookinfo.Hosting;
using Bowline.Samples.Bookinfo.Upstreams;

namespace Bowline.Samples.Bookinfo.ProductPage;

/// <summary>productpage: the HTML page, the JSON API, login/logout and static files; calls
/// details and reviews (and ratings for the ratings API).</summary>
internal sealed class ProductPageRole : IRole
{
    public string Name => "productpage";

    public string HealthStatus => "Product page is healthy";

    public void AddServices(IServiceCollection services) =>
        services
            .AddSingleton(BackendAddresses.FromEnvironment())
            .AddUpstreams()
            .AddSingleton<ProductBackends>();

    public void MapEndpoints(IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/productpage", ProductPageEndpoint.GetAsync);
        endpoints.MapPost("/login", SessionEndpoints.LoginAsync);
        endpoints.MapGet("/logout", SessionEndpoints.Logout);
        endpoints.MapGet("/static/{**path}", (string path) =>
            path == PageStyle.Path ? Results.Text(PageStyle.Css, "text/css") : Results.NotFound());
        ProductApiEndpoints.Map(endpoints);
    }
}
