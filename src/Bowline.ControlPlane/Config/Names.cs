namespace Bowline.ControlPlane.Config;

/// <summary>Kubernetes and Istio name rules and host-name forms.</summary>
internal static class Names
{
    public const string ClusterDomain = "svc.cluster.local";

    /// <summary>Whether a name is a DNS subdomain (RFC 1123), the rule Kubernetes applies to object names.</summary>
    public static bool IsDnsLabelOrSubdomain(string name)
    {
        if (name.Length is 0 or > 253)
        {
            return false;
        }
        foreach (var label in name.Split('.'))
        {
            if (label.Length is 0 or > 63 || !char.IsAsciiLetterOrDigit(label[0]) || !char.IsAsciiLetterOrDigit(label[^1]))
            {
                return false;
            }
            foreach (var c in label)
            {
                if (!(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-'))
                {
                    return false;
                }
            }
        }
        return true;
    }

    /// <summary>Istio's resolution of a short host in a VirtualService or DestinationRule: <c>reviews</c> in namespace <c>default</c> is <c>reviews.default.svc.cluster.local</c>.</summary>
    public static string Qualify(string host, string ns)
    {
        if (host == "*" || host.StartsWith("*.", StringComparison.Ordinal))
        {
            return host;
        }
        return host.Contains('.', StringComparison.Ordinal) ? host : $"{host}.{ns}.{ClusterDomain}";
    }
}
