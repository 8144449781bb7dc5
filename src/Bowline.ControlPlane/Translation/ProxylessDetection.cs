using Bowline.Xds;
using Envoy.Service.Discovery.V3;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// Recognises a proxyless gRPC client whose bootstrap never said so (no <c>GENERATOR: grpc</c>): by its user agent, or
/// by what it asks for. Sidecars subscribe to listeners as a wildcard; a gRPC channel dialling <c>xds:///reviews:9080</c>
/// asks LDS for exactly <c>reviews:9080</c> (gRFC A27). Served sidecar listeners, such a client would wait forever
/// for a listener that never comes.
/// </summary>
internal static class ProxylessDetection
{
    // The gRPC libraries' xDS clients send "gRPC Node Pure JS", "gRPC Java", "gRPC Go", "gRPC C-core"; their HTTP
    // user agents read "grpc-node-js", "grpc-java", "grpc-go", "grpc-c". Both forms compare equal once normalised.
    private static readonly string[] GrpcAgents = ["grpc-node", "grpc-java", "grpc-go", "grpc-c"];

    /// <summary>Whether a node's <c>user_agent_name</c> is one of the gRPC libraries' xDS clients.</summary>
    public static bool IsGrpcUserAgent(string? userAgentName)
    {
        if (string.IsNullOrWhiteSpace(userAgentName))
        {
            return false;
        }
        var normalised = userAgentName.Trim().ToLowerInvariant().Replace(' ', '-').Replace('_', '-');
        return GrpcAgents.Any(agent => normalised == agent || normalised.StartsWith(agent + "-", StringComparison.Ordinal) || normalised.StartsWith(agent + "/", StringComparison.Ordinal));
    }

    /// <summary>Whether a request is an LDS subscription to named <c>host:port</c> listeners, which only API-listener clients send.</summary>
    public static bool AsksForApiListeners(DiscoveryRequest request) =>
        request.TypeUrl == TypeUrls.Listener && request.ResourceNames.Count > 0 && request.ResourceNames.All(IsHostPort);

    private static bool IsHostPort(string name)
    {
        var colon = name.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(name.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            return false;
        }
        var host = name.AsSpan(0, colon);
        foreach (var c in host)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_'))
            {
                return false;
            }
        }
        return true;
    }
}
