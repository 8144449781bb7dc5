namespace Bowline.Proxy.Clusters.LoadBalancing;

internal sealed class RandomBalancer(Random random) : ILoadBalancer
{
    public string Name => LoadBalancers.Random;

    public UpstreamEndpoint? Pick(HostSet hosts, ulong? hash, int attempt, ulong excludedLevels = 0)
    {
        var available = hosts.Choose(excludedLevels);
        return available.Length == 0 ? null : available[random.Next(available.Length)];
    }
}
