namespace Bowline.Proxy.Clusters.LoadBalancing;

internal sealed class RoundRobinBalancer : ILoadBalancer
{
    private uint _next;

    public string Name => LoadBalancers.RoundRobin;

    public UpstreamEndpoint? Pick(UpstreamEndpoint[] healthy) =>
        healthy.Length == 0 ? null : healthy[(int)(Interlocked.Increment(ref _next) % (uint)healthy.Length)];
}
