using Bowline.Samples.Bookinfo.Details;
using Bowline.Samples.Bookinfo.ProductPage;
using Bowline.Samples.Bookinfo.Ratings;
using Bowline.Samples.Bookinfo.Reviews;

namespace Bowline.Samples.Bookinfo.Hosting;

/// <summary>The catalogue of roles the executable can run.</summary>
internal static class Roles
{
    private static readonly IRole[] All =
    [
        new ProductPageRole(),
        new DetailsRole(),
        new ReviewsRole(),
        new RatingsRole(),
    ];

    public static string Usage =>
        $"usage: bookinfo {string.Join('|', All.Select(r => r.Name))}";

    public static IRole? Find(string name) =>
        Array.Find(All, r => string.Equals(r.Name, name, StringComparison.Ordinal));
}
