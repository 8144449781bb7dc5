namespace Bowline.Proxy.Clusters.LoadBalancing;

internal sealed class RandomBalancer(Random random) : ILoadBalancer
{
    public string Name => LoadBalancers.Random;

    public UpstreamEndpoint? Pick(UpstreamEndpoint[] healthy) => healthy.Length == 0 ? null : healthy[random.Next(healthy.Length)];
}
