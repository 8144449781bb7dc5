using System.Text.Json.Serialization;
using Bowline.Samples.Bookinfo.Details;
using Bowline.Samples.Bookinfo.Hosting;
using Bowline.Samples.Bookinfo.ProductPage;
using Bowline.Samples.Bookinfo.Ratings;
using Bowline.Samples.Bookinfo.Reviews;

namespace Bowline.Samples.Bookinfo.Json;

/// <summary>Every JSON body bookinfo writes or reads, generated at compile time.</summary>
/// <remarks>camelCase names match Istio's lower-case fields (<c>podname</c>, <c>clustername</c>);
/// absent optional fields are left out, as Istio's reviews leaves out <c>rating</c> in v1.</remarks>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(HealthStatus))]
[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(BookDetails))]
[JsonSerializable(typeof(ProductRatings))]
[JsonSerializable(typeof(ProductReviews))]
[JsonSerializable(typeof(IReadOnlyList<Product>))]
internal sealed partial class BookinfoJsonContext : JsonSerializerContext;
