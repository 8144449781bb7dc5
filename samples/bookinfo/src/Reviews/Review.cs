namespace Bowline.Samples.Bookinfo.Reviews;

/// <summary>One review; <see cref="Rating"/> is absent in reviews v1.</summary>
internal sealed record Review(string Reviewer, string Text, ReviewRating? Rating = null);
