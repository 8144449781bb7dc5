using System.Globalization;
using Bowline.Samples.Bookinfo.Json;
using Bowline.Samples.Bookinfo.Upstreams;

namespace Bowline.Samples.Bookinfo.Reviews;

/// <summary><c>GET /reviews/{id}</c>: two fixed reviews, with stars from ratings in v2 and v3.
/// Always 200: a ratings failure shows up inside each review, as in Istio.</summary>
internal sealed class ReviewsEndpoint(ReviewsSettings settings, RatingsLookup ratings)
{
    private static readonly (string Reviewer, string Text)[] Texts =
    [
        ("Reviewer1", "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"),
        ("Reviewer2", "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare."),
    ];

    public async Task<IResult> GetAsync(int productId, HttpRequest request, CancellationToken cancellationToken)
    {
        IReadOnlyDictionary<string, int>? stars = settings.RatingsEnabled
            ? await ratings.GetAsync(productId, OutgoingHeaders.From(request), cancellationToken)
            : null;

        Review[] reviews = Array.ConvertAll(
            Texts, t => new Review(t.Reviewer, t.Text, RatingOf(t.Reviewer, stars)));

        var body = new ProductReviews(
            productId.ToString(CultureInfo.InvariantCulture),
            settings.PodName,
            settings.ClusterName,
            reviews,
            settings.Version);
        return Results.Json(body, BookinfoJson.Context.ProductReviews);
    }

    private ReviewRating? RatingOf(string reviewer, IReadOnlyDictionary<string, int>? stars)
    {
        if (settings.StarColor is not { } color)
        {
            return null;
        }

        return stars is not null && stars.TryGetValue(reviewer, out int count)
            ? new ReviewRating(Stars: count, Color: color)
            : new ReviewRating(Error: ReviewRating.Unavailable);
    }
}
