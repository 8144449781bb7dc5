namespace Bowline.Xds;

/// <summary>The xDS v3 resource type URLs, as they travel in <c>DiscoveryRequest.type_url</c> and <c>google.protobuf.Any</c>.</summary>
public static class TypeUrls
{
    public const string Listener = "type.googleapis.com/envoy.config.listener.v3.Listener";
    public const string RouteConfiguration = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
    public const string Cluster = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    public const string ClusterLoadAssignment = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
    public const string Secret = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

    /// <summary>
    /// The order in which a server pushes a changed snapshot, so that nothing refers to a resource the client does not
    /// have yet: clusters, their endpoints, listeners, their routes; secrets last, as Istio orders them (a client asks
    /// for a secret only once a listener or cluster names it, and a chain waiting for its secret refuses handshakes).
    /// </summary>
    public static readonly IReadOnlyList<string> PushOrder = [Cluster, ClusterLoadAssignment, Listener, RouteConfiguration, Secret];

    /// <summary>Short names used in logs, metrics and the CLI (Envoy's own abbreviations).</summary>
    public static string ShortName(string typeUrl) => typeUrl switch
    {
        Listener => "LDS",
        RouteConfiguration => "RDS",
        Cluster => "CDS",
        ClusterLoadAssignment => "EDS",
        Secret => "SDS",
        _ => typeUrl,
    };

    /// <summary>For LDS and CDS a resource missing from a state-of-the-world response is deleted; for RDS and EDS it is not.</summary>
    public static bool IsWildcardType(string typeUrl) => typeUrl is Listener or Cluster;
}
