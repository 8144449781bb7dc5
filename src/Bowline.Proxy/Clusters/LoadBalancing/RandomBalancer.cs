namespace Bowline.Proxy.Clusters.LoadBalancing;

internal sealed class RandomBalancer(Random random) : ILoadBalancer
{
    public string Name => LoadBalancers.Random;

    public UpstreamEndpoint? Pick(HostSet hosts, ulong? hash, int attempt) =>
        hosts.Available.Length == 0 ? null : hosts.Available[random.Next(hosts.Available.Length)];
}
