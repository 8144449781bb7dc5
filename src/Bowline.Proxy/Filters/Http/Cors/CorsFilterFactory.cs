using Bowline.Proxy.Configuration;
using Bowline.Proxy.Routing;
using Envoy.Extensions.Filters.Http.Cors.V3;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.Proxy.Filters.Http.Cors;

/// <summary><c>envoy.filters.http.cors</c>: the filter itself has no settings; each route's CorsPolicy says what is allowed (Istio's <c>corsPolicy</c>).</summary>
internal sealed class CorsFilterFactory : IHttpFilterFactory
{
    public string ConfigTypeUrl => "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors";

    public string? PerRouteTypeUrl => "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy";

    public IHttpFilter Create(string name, Any config, FilterFactoryContext context, string where)
    {
        XdsFields.Check(config.Unpack<Envoy.Extensions.Filters.Http.Cors.V3.Cors>(), where);
        return new CorsFilter(name, context);
    }

    public object CompilePerRoute(Any config, string where)
    {
        var policy = config.Unpack<CorsPolicy>();
        XdsFields.Check(policy, where, "allow_origin_string_match", "allow_methods", "allow_headers", "expose_headers", "max_age", "allow_credentials",
            "filter_enabled", "forward_not_matching_preflights");
        return new CompiledCorsPolicy(
            [.. policy.AllowOriginStringMatch.Select((m, i) => StringMatcher.From(m, $"{where} allow_origin_string_match[{i}]"))],
            policy.AllowMethods,
            policy.AllowHeaders,
            policy.ExposeHeaders,
            policy.MaxAge,
            policy.AllowCredentials ?? false,
            Fraction.From(policy.FilterEnabled, Fraction.All, where + " filter_enabled"),
            policy.ForwardNotMatchingPreflights ?? true);
    }
}

/// <summary>A route's compiled CORS policy. Header lists are kept as Envoy sends them, comma-separated.</summary>
internal sealed record CompiledCorsPolicy(
    StringMatcher[] AllowOrigins,
    string AllowMethods,
    string AllowHeaders,
    string ExposeHeaders,
    string MaxAge,
    bool AllowCredentials,
    Fraction Enabled,
    bool ForwardNotMatchingPreflights)
{
    public bool Allows(string origin) => AllowOrigins.Any(m => m.Matches(origin));
}
