using Bowline.Samples.Bookinfo.Hosting;
using Bowline.Samples.Bookinfo.Upstreams;

namespace Bowline.Samples.Bookinfo.Reviews;

/// <summary>What a reviews instance is, read once from its environment.</summary>
/// <param name="Version"><c>SERVICE_VERSION</c>: v1 (no stars), v2 (black), v3 (red).</param>
/// <param name="PodName"><c>POD_NAME</c>, default <c>reviews-{version}</c>.</param>
/// <param name="ClusterName"><c>CLUSTER_NAME</c>; Istio's Java service prints an unset one as
/// the string "null", and so do we.</param>
/// <param name="StarColor">Null when this version shows no ratings and never calls ratings.</param>
/// <param name="RatingsTimeout">Istio's application timeout on the ratings call: 10 s in v2,
/// 2.5 s in v3. The fault-injection task's outcome depends on these numbers.</param>
/// <param name="Ratings">Base address of the ratings service.</param>
internal sealed record ReviewsSettings(
    string Version,
    string PodName,
    string ClusterName,
    string? StarColor,
    TimeSpan RatingsTimeout,
    Uri Ratings)
{
    public bool RatingsEnabled => StarColor is not null;

    public static ReviewsSettings FromEnvironment()
    {
        string version = Env.Get("SERVICE_VERSION") ?? "v1";
        (string? color, TimeSpan timeout) = version switch
        {
            "v1" => ((string?)null, TimeSpan.Zero),
            "v2" => ("black", TimeSpan.FromSeconds(10)),
            "v3" => ("red", TimeSpan.FromSeconds(2.5)),
            _ => throw new StartupException(
                $"SERVICE_VERSION='{version}' is not a reviews version; set it to v1, v2 or v3."),
        };

        return new ReviewsSettings(
            version,
            Env.Get("POD_NAME") ?? $"reviews-{version}",
            Env.Get("CLUSTER_NAME") ?? "null",
            color,
            timeout,
            ServiceAddress.FromEnvironment("ratings"));
    }
}
