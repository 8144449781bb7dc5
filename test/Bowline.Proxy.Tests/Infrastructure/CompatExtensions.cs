using Bowline.Proxy.Clusters;
using Bowline.Proxy.Clusters.LoadBalancing;
using Bowline.Proxy.Routing;

namespace Bowline.Proxy.Tests.Infrastructure;

/// <summary>Reads of a cluster handle's current config and hosts, and of a route's action, as the tests phrase them.</summary>
internal static class CompatExtensions
{
    extension(ClusterState cluster)
    {
        public UpstreamProtocol Protocol => cluster.Current!.Config.Protocol;

        public IReadOnlyList<WeightedEndpoint> Endpoints => cluster.Current!.Hosts.All;

        public UpstreamEndpoint[] Healthy => cluster.Current!.Hosts.Available;

        public ILoadBalancer Balancer => cluster.Current!.Config.Balancer;

        public HttpMessageInvoker Invoker => cluster.Current!.Config.Invoker;

        public UpstreamEndpoint? PickEndpoint() => cluster.Current!.Config.Balancer.Pick(cluster.Current.Hosts, null, 0);
    }

    extension(RouteEntry route)
    {
        public IReadOnlyList<WeightedTarget> Targets => route.Action!.Targets;

        public WeightedTarget Pick(Random random) => route.Action!.Pick(random);
    }
}
