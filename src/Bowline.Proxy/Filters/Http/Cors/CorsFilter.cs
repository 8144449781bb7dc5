using Bowline.Proxy.Http;
using Bowline.Proxy.Stats;
using Microsoft.AspNetCore.Http;

namespace Bowline.Proxy.Filters.Http.Cors;

/// <summary>
/// Envoy's CORS filter at request time. A preflight (OPTIONS with Origin and Access-Control-Request-Method) from an
/// allowed origin is answered locally with the policy's headers; an actual request from an allowed origin goes on and
/// its response gets Access-Control-Allow-Origin (and credentials, exposed headers). Requests without a policy or
/// from other origins are untouched.
/// </summary>
internal sealed class CorsFilter(string name, FilterFactoryContext context) : IHttpFilter, IHttpResponseFilter
{
    private readonly Stat _preflights = context.Stats.Get(Stats.StatTag.Http(context.StatPrefix), "cors.origin_valid");
    private readonly Stat _invalid = context.Stats.Get(Stats.StatTag.Http(context.StatPrefix), "cors.origin_invalid");

    public string Name => name;

    public async ValueTask<FilterStatus> OnRequestAsync(HttpStream stream)
    {
        var request = stream.Context.Request;
        if (stream.FilterConfig<CompiledCorsPolicy>(name) is not { } policy || !request.Headers.TryGetValue("origin", out var originValues) || !policy.Enabled.Roll(context.Random))
        {
            return FilterStatus.Continue;
        }
        var origin = originValues.ToString();
        var preflight = HttpMethods.IsOptions(request.Method) && request.Headers.ContainsKey("access-control-request-method");
        if (!policy.Allows(origin))
        {
            _invalid.Increment();
            if (preflight && !policy.ForwardNotMatchingPreflights)
            {
                // Istio's unmatchedPreflights: IGNORE answers the preflight here, without CORS headers.
                await stream.SendLocalReplyAsync(StatusCodes.Status200OK, "", ResponseFlags.None, "cors_response").ConfigureAwait(false);
                return FilterStatus.Stop;
            }
            return FilterStatus.Continue;
        }
        _preflights.Increment();
        if (!preflight)
        {
            stream.AddResponseFilter(this);
            return FilterStatus.Continue;
        }
        var headers = stream.Context.Response.Headers;
        await stream.SendLocalReplyAsync(StatusCodes.Status200OK, "", ResponseFlags.None, "cors_response").ConfigureAwait(false);
        // Local reply cleared the response; the preflight headers go on after it, before the (empty) body starts.
        headers.AccessControlAllowOrigin = origin;
        Set(headers, "access-control-allow-methods", policy.AllowMethods);
        Set(headers, "access-control-allow-headers", policy.AllowHeaders);
        Set(headers, "access-control-max-age", policy.MaxAge);
        if (policy.AllowCredentials)
        {
            headers.AccessControlAllowCredentials = "true";
        }
        return FilterStatus.Stop;
    }

    public void OnResponseHeaders(HttpStream stream)
    {
        var policy = stream.FilterConfig<CompiledCorsPolicy>(name)!;
        var headers = stream.Context.Response.Headers;
        headers.AccessControlAllowOrigin = stream.Context.Request.Headers.Origin.ToString();
        Set(headers, "access-control-expose-headers", policy.ExposeHeaders);
        if (policy.AllowCredentials)
        {
            headers.AccessControlAllowCredentials = "true";
        }
    }

    private static void Set(IHeaderDictionary headers, string name, string value)
    {
        if (value.Length > 0)
        {
            headers[name] = value;
        }
    }
}
