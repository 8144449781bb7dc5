namespace Bowline.Samples.Bookinfo.Reviews;

/// <summary>Either <c>{"stars":5,"color":"black"}</c> or, when ratings could not be reached,
/// <c>{"error":"Ratings service is currently unavailable"}</c>.</summary>
internal sealed record ReviewRating(int? Stars = null, string? Color = null, string? Error = null)
{
    public const string Unavailable = "Ratings service is currently unavailable";
}
