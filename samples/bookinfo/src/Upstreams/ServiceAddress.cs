using Bowline.Samples.Bookinfo.Hosting;

namespace Bowline.Samples.Bookinfo.Upstreams;

/// <summary>Where another bookinfo service is called, resolved once at startup as Istio's
/// bookinfo resolves it: <c>http://$DETAILS_HOSTNAME[.$SERVICES_DOMAIN]:9080/</c>, host
/// defaulting to the service name. The port is 9080 unless <c>$DETAILS_PORT</c> says
/// otherwise, which only matters when running without a mesh.</summary>
internal static class ServiceAddress
{
    private const int ServicePort = 9080;

    public static Uri FromEnvironment(string service)
    {
        string prefix = service.ToUpperInvariant();
        string host = Env.Get($"{prefix}_HOSTNAME") ?? service;
        string domain = Env.Get("SERVICES_DOMAIN") is { } d ? "." + d : string.Empty;
        int port = Env.GetPort($"{prefix}_PORT", ServicePort);

        string text = $"http://{host}{domain}:{port}/";
        if (!Uri.TryCreate(text, UriKind.Absolute, out Uri? uri))
        {
            throw new StartupException(
                $"'{text}' is not a valid address for {service}; check {prefix}_HOSTNAME and SERVICES_DOMAIN.");
        }

        return uri;
    }

    /// <summary><c>{base}{endpoint}/{id}</c>, the id escaped as one path segment.</summary>
    public static Uri Resolve(Uri baseAddress, string endpoint, string id) =>
        new(baseAddress, $"{endpoint}/{Uri.EscapeDataString(id)}");
}
