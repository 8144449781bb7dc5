using Bowline.Proxy.Clusters;

namespace Bowline.Proxy.Tests.Clusters.LoadBalancing;

internal static class Endpoints
{
    /// <summary><paramref name="count"/> distinct endpoints on 10.0.0.1, 10.0.0.2, ...</summary>
    public static UpstreamEndpoint[] Create(int count) => [.. Enumerable.Range(1, count).Select(i => new UpstreamEndpoint($"10.0.0.{i}", 9080))];

    /// <summary>A host set of <paramref name="endpoints"/>, all healthy, weight 1.</summary>
    public static HostSet Set(UpstreamEndpoint[] endpoints) => new(null, [.. endpoints.Select(e => new WeightedEndpoint(e, 1, true))], 0, null);

    /// <summary>How many times each endpoint was picked, in endpoint order.</summary>
    public static int[] Tally(UpstreamEndpoint[] endpoints, Func<UpstreamEndpoint?> pick, int picks)
    {
        var counts = new int[endpoints.Length];
        for (var i = 0; i < picks; i++)
        {
            counts[Array.IndexOf(endpoints, pick())]++;
        }
        return counts;
    }
}
