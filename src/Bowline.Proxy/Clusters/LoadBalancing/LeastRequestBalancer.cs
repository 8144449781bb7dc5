namespace Bowline.Proxy.Clusters.LoadBalancing;

/// <summary>Power of two choices over active request counts, Envoy's LEAST_REQUEST with its default choice_count of 2.</summary>
internal sealed class LeastRequestBalancer(Random random) : ILoadBalancer
{
    public string Name => LoadBalancers.LeastRequest;

    public UpstreamEndpoint? Pick(HostSet hosts, ulong? hash, int attempt, ulong excludedLevels = 0)
    {
        var available = hosts.Choose(excludedLevels);
        switch (available.Length)
        {
            case 0:
                return null;
            case 1:
                return available[0];
        }
        var first = random.Next(available.Length);
        var second = random.Next(available.Length - 1);
        if (second >= first)
        {
            second++;
        }
        var a = available[first];
        var b = available[second];
        return b.ActiveRequests < a.ActiveRequests ? b : a;
    }
}
