using Bowline.Proxy.Configuration;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace Bowline.Proxy.Filters.Http.Router;

/// <summary>
/// <c>envoy.filters.http.router</c>: the terminal filter. Its config has nothing Bowline acts on beyond the defaults,
/// so any field set is a NACK; the one router instance is shared by every chain.
/// </summary>
internal sealed class RouterFilterFactory(IHttpForwarder forwarder, Random random, TimeProvider time, ILoggerFactory loggers) : IHttpFilterFactory
{
    public const string TypeUrl = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

    private readonly RouterFilter _router = new(forwarder, random, time, loggers.CreateLogger<RouterFilter>());

    public string ConfigTypeUrl => TypeUrl;

    public string? PerRouteTypeUrl => null;

    public IHttpFilter Create(string name, Any config, FilterFactoryContext context, string where)
    {
        XdsFields.Check(config.Unpack<Envoy.Extensions.Filters.Http.Router.V3.Router>(), where);
        return _router;
    }
}
