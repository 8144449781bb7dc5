using Bowline.Proxy.Configuration;
using Bowline.Proxy.Routing;
using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Http.JwtAuthn.V3;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using StringMatcher = Bowline.Proxy.Routing.StringMatcher;

namespace Bowline.Proxy.Filters.Http.JwtAuthn;

/// <summary>
/// <c>envoy.filters.http.jwt_authn</c>: Istio's RequestAuthentication. Compiles providers (parsing every JWKS once),
/// rules and the requirement map into an immutable <see cref="JwtAuthnConfig"/>. Keys must be local
/// (<c>local_jwks</c>): Istio's control plane fetches <c>jwksUri</c> itself and inlines the keys by default, and
/// <c>remote_jwks</c> is refused. An unusable JWKS is not a NACK (Envoy accepts it too): it is logged, and tokens of
/// that provider fail with "Jwks doesn't have any valid public key".
/// </summary>
internal sealed partial class JwtAuthnFilterFactory : IHttpFilterFactory
{
    public const string TypeUrl = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication";
    public const string PerRouteTypeUrlValue = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig";

    public string ConfigTypeUrl => TypeUrl;

    public string? PerRouteTypeUrl => PerRouteTypeUrlValue;

    public IHttpFilter Create(string name, Any config, FilterFactoryContext context, string where) =>
        new JwtAuthnFilter(name, Compile(config.Unpack<JwtAuthentication>(), context.Loggers.CreateLogger("Bowline.Proxy.Filters.Http.JwtAuthn"), where), context);

    public object CompilePerRoute(Any config, string where)
    {
        var proto = config.Unpack<PerRouteConfig>();
        XdsFields.Check(proto, where, "disabled", "requirement_name");
        return proto.RequirementSpecifierCase switch
        {
            PerRouteConfig.RequirementSpecifierOneofCase.Disabled when proto.Disabled => new JwtPerRouteConfig(true, ""),
            PerRouteConfig.RequirementSpecifierOneofCase.RequirementName when proto.RequirementName.Length > 0 => new JwtPerRouteConfig(false, proto.RequirementName),
            _ => throw new ProxyConfigException($"{where}: a jwt_authn PerRouteConfig needs disabled: true or a non-empty requirement_name"),
        };
    }

    internal static JwtAuthnConfig Compile(JwtAuthentication proto, ILogger logger, string where)
    {
        XdsFields.Check(proto, where, "providers", "rules", "bypass_cors_preflight", "requirement_map", "strip_failure_response");
        var providers = proto.Providers.OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => Provider(p.Key, p.Value, logger, $"{where} provider {p.Key}"))
            .ToDictionary(p => p.Name, StringComparer.Ordinal);
        var builder = new VerifierBuilder(providers);

        var requirementMap = new Dictionary<string, JwtVerifier>(StringComparer.Ordinal);
        foreach (var (name, requirement) in proto.RequirementMap)
        {
            requirementMap[name] = builder.Build(requirement, $"{where} requirement_map[{name}]");
        }
        var rules = new List<JwtRule>();
        for (var i = 0; i < proto.Rules.Count; i++)
        {
            var rule = proto.Rules[i];
            var rwhere = $"{where} rules[{i}]";
            XdsFields.Check(rule, rwhere, "match", "requires", "requirement_name");
            var match = Match(rule.Match ?? throw new ProxyConfigException($"{rwhere}: match is required"), rwhere);
            JwtVerifier? verifier = rule.RequirementTypeCase switch
            {
                RequirementRule.RequirementTypeOneofCase.Requires => builder.Build(rule.Requires, rwhere + " requires"),
                RequirementRule.RequirementTypeOneofCase.RequirementName => requirementMap.GetValueOrDefault(rule.RequirementName)
                    ?? throw new ProxyConfigException($"{rwhere}: Wrong requirement_name: {rule.RequirementName}. It should be one of [{string.Join(",", requirementMap.Keys.Order(StringComparer.Ordinal))}]"),
                _ => null,
            };
            rules.Add(new JwtRule(match, verifier));
        }
        return new JwtAuthnConfig([.. rules], requirementMap, proto.BypassCorsPreflight, proto.StripFailureResponse);
    }

    private static JwtProviderConfig Provider(string name, JwtProvider proto, ILogger logger, string where)
    {
        if (proto.JwksSourceSpecifierCase == JwtProvider.JwksSourceSpecifierOneofCase.RemoteJwks)
        {
            throw new ProxyConfigException($"{where}: remote_jwks is not supported by the Bowline proxy; inline the keys with local_jwks (Istio's control plane does this by default: it fetches jwksUri itself unless PILOT_JWT_ENABLE_REMOTE_JWKS asks Envoy to)");
        }
        XdsFields.Check(proto, where, "issuer", "audiences", "subjects", "require_expiration", "max_lifetime", "local_jwks", "forward", "from_headers",
            "from_params", "from_cookies", "forward_payload_header", "pad_forward_payload_header", "payload_in_metadata", "normalize_payload_in_metadata",
            "header_in_metadata", "clock_skew_seconds", "jwt_cache_config", "claim_to_headers", "clear_route_cache");
        if (proto.LocalJwks is null)
        {
            throw new ProxyConfigException($"{where}: local_jwks is required (a JWKS inline_string or filename)");
        }
        var problems = new List<string>();
        var keys = JwksKeySet.Parse(ReadJwks(proto.LocalJwks, where), problems);
        foreach (var problem in problems)
        {
            Log.JwksProblem(logger, name, proto.Issuer, problem);
        }
        if (keys.Count == 0)
        {
            Log.NoUsableKeys(logger, name, proto.Issuer);
        }

        var headers = new List<(string, string)>();
        foreach (var header in proto.FromHeaders)
        {
            XdsFields.Check(header, where + " from_headers", "name", "value_prefix");
            if (header.Name.Length == 0)
            {
                throw new ProxyConfigException($"{where}: from_headers entry without a name");
            }
            headers.Add((header.Name.ToLowerInvariant(), header.ValuePrefix));
        }
        var parameters = proto.FromParams.ToList();
        if (headers.Count == 0 && parameters.Count == 0 && proto.FromCookies.Count == 0)
        {
            // Envoy's default locations: RFC 6750's Authorization header and access_token query parameter.
            headers.Add(("authorization", "Bearer "));
            parameters.Add("access_token");
        }
        var claims = new List<(string, string)>();
        foreach (var claim in proto.ClaimToHeaders)
        {
            XdsFields.Check(claim, where + " claim_to_headers", "header_name", "claim_name");
            if (claim.HeaderName.Length == 0 || claim.ClaimName.Length == 0)
            {
                throw new ProxyConfigException($"{where}: claim_to_headers needs header_name and claim_name");
            }
            claims.Add((claim.HeaderName.ToLowerInvariant(), claim.ClaimName));
        }
        TimeSpan? maxLifetime = proto.MaxLifetime is { } max ? max.ToTimeSpan() : proto.RequireExpiration ? TimeSpan.MaxValue : null;
        if (maxLifetime is { } lifetime && lifetime <= TimeSpan.Zero)
        {
            throw new ProxyConfigException($"{where}: max_lifetime must be positive");
        }
        if (proto.NormalizePayloadInMetadata is { } normalize)
        {
            XdsFields.Check(normalize, where + " normalize_payload_in_metadata", "space_delimited_claims");
        }
        return new JwtProviderConfig(
            name,
            proto.Issuer,
            [.. proto.Audiences],
            keys,
            headers,
            parameters,
            [.. proto.FromCookies],
            proto.Forward,
            proto.ForwardPayloadHeader.Length > 0 ? proto.ForwardPayloadHeader.ToLowerInvariant() : null,
            proto.PadForwardPayloadHeader,
            proto.PayloadInMetadata.Length > 0 ? proto.PayloadInMetadata : null,
            proto.HeaderInMetadata.Length > 0 ? proto.HeaderInMetadata : null,
            proto.NormalizePayloadInMetadata is { } n ? [.. n.SpaceDelimitedClaims] : [],
            claims,
            proto.ClockSkewSeconds > 0 ? proto.ClockSkewSeconds : 60,
            proto.Subjects is { } subjects ? StringMatcher.From(subjects, where + " subjects") : null,
            maxLifetime,
            proto.ClearRouteCache);
    }

    private static string ReadJwks(DataSource source, string where)
    {
        XdsFields.Check(source, where + " local_jwks", "inline_string", "inline_bytes", "filename");
        switch (source.SpecifierCase)
        {
            case DataSource.SpecifierOneofCase.InlineString:
                return source.InlineString;
            case DataSource.SpecifierOneofCase.InlineBytes:
                return source.InlineBytes.ToStringUtf8();
            case DataSource.SpecifierOneofCase.Filename:
                try
                {
                    return File.ReadAllText(source.Filename);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new ProxyConfigException($"{where}: local_jwks.filename {source.Filename} cannot be read: {e.Message}");
                }
            default:
                throw new ProxyConfigException($"{where}: local_jwks needs inline_string, inline_bytes or filename");
        }
    }

    /// <summary>A rule's <c>match</c>, compiled into the proxy's route matcher so rules and routes agree on what matches.</summary>
    private static RouteEntry Match(RouteMatch match, string where)
    {
        var (exact, prefix, regex, caseSensitive, headers, query) = RouteCompiler.Match(match, where);
        return new RouteEntry("", exact, prefix, regex, caseSensitive, headers, query);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "jwt_authn provider {Provider} (issuer '{Issuer}'): {Problem}; that key is not used")]
        public static partial void JwksProblem(ILogger logger, string provider, string issuer, string problem);

        [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "jwt_authn provider {Provider} (issuer '{Issuer}') has no usable key in its JWKS: every token it must verify fails with \"Jwks doesn't have any valid public key\"")]
        public static partial void NoUsableKeys(ILogger logger, string provider, string issuer);
    }
}
