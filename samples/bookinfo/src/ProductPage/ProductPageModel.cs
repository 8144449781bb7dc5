using Bowline.Samples.Bookinfo.Details;
using Bowline.Samples.Bookinfo.Reviews;

namespace Bowline.Samples.Bookinfo.ProductPage;

/// <summary>Everything the product page shows. Exactly one of <see cref="Details"/> and
/// <see cref="DetailsError"/> is set, and likewise for reviews.</summary>
internal sealed record ProductPageModel(
    Product Product,
    string? User,
    BookDetails? Details,
    string? DetailsError,
    ProductReviews? Reviews,
    string? ReviewsError);
