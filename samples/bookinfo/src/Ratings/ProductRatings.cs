namespace Bowline.Samples.Bookinfo.Ratings;

/// <summary>The body of <c>GET /ratings/{id}</c>:
/// <c>{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}</c>.</summary>
internal sealed record ProductRatings(int Id, Dictionary<string, int> Ratings)
{
    /// <summary>Istio's ratings v1 holds the same two ratings for every product.</summary>
    public static ProductRatings ForProduct(int id) =>
        new(id, new Dictionary<string, int> { ["Reviewer1"] = 5, ["Reviewer2"] = 4 });
}
