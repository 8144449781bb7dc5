using Bowline.Samples.Bookinfo.Upstreams;

namespace Bowline.Samples.Bookinfo.ProductPage;

/// <summary>The services productpage calls, resolved once at startup.</summary>
internal sealed record BackendAddresses(Uri Details, Uri Reviews, Uri Ratings)
{
    public static BackendAddresses FromEnvironment() => new(
        ServiceAddress.FromEnvironment("details"),
        ServiceAddress.FromEnvironment("reviews"),
        ServiceAddress.FromEnvironment("ratings"));
}
