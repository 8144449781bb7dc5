using System.Globalization;
using System.Text.Json;
using Bowline.Samples.Bookinfo.Json;
using Bowline.Samples.Bookinfo.Upstreams;

namespace Bowline.Samples.Bookinfo.Reviews;

/// <summary>Asks the ratings service for a product's stars, within this version's timeout.</summary>
internal sealed class RatingsLookup(UpstreamClient upstream, ReviewsSettings settings)
{
    /// <summary>Stars by reviewer, or null when ratings failed, timed out or answered nonsense.</summary>
    public async Task<IReadOnlyDictionary<string, int>?> GetAsync(
        int productId, OutgoingHeaders headers, CancellationToken cancellationToken)
    {
        Uri url = ServiceAddress.Resolve(
            settings.Ratings, "ratings", productId.ToString(CultureInfo.InvariantCulture));
        UpstreamResponse response =
            await upstream.GetAsync(url, headers, settings.RatingsTimeout, cancellationToken);
        if (!response.IsOk)
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(response.Body!, BookinfoJson.Context.ProductRatings)?.Ratings;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
