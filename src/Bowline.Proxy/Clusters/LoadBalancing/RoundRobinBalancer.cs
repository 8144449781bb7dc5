namespace Bowline.Proxy.Clusters.LoadBalancing;

internal sealed class RoundRobinBalancer : ILoadBalancer
{
    private uint _next;

    public string Name => LoadBalancers.RoundRobin;

    public UpstreamEndpoint? Pick(HostSet hosts, ulong? hash, int attempt) =>
        hosts.Available.Length == 0 ? null : hosts.Available[(int)(Interlocked.Increment(ref _next) % (uint)hosts.Available.Length)];
}
