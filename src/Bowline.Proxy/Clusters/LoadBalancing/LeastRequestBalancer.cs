namespace Bowline.Proxy.Clusters.LoadBalancing;

/// <summary>Power of two choices over active request counts, Envoy's LEAST_REQUEST with its default choice_count of 2.</summary>
internal sealed class LeastRequestBalancer(Random random) : ILoadBalancer
{
    public string Name => LoadBalancers.LeastRequest;

    public UpstreamEndpoint? Pick(UpstreamEndpoint[] healthy)
    {
        switch (healthy.Length)
        {
            case 0:
                return null;
            case 1:
                return healthy[0];
        }
        var first = random.Next(healthy.Length);
        var second = random.Next(healthy.Length - 1);
        if (second >= first)
        {
            second++;
        }
        var a = healthy[first];
        var b = healthy[second];
        return b.ActiveRequests < a.ActiveRequests ? b : a;
    }
}
