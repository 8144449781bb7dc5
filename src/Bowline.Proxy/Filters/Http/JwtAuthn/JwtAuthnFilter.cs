using Bowline.Proxy.Http;
using Bowline.Proxy.Stats;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Http;

namespace Bowline.Proxy.Filters.Http.JwtAuthn;

/// <summary>
/// Envoy's JWT authentication at request time. The requirement comes from the route's <c>PerRouteConfig</c>
/// (<c>disabled</c>, or a <c>requirement_name</c> of the <c>requirement_map</c>), else from the first rule whose
/// match fits; no requirement lets the request through. A failed requirement is answered 401 (403 for a wrong
/// audience or an unknown requirement name) with Envoy's message as the body, a <c>www-authenticate</c> header and
/// <c>jwt_authn_access_denied{...}</c> as the response code details. Verified payloads land in the request's dynamic
/// metadata under <c>envoy.filters.http.jwt_authn</c>, where RBAC reads them.
/// </summary>
internal sealed class JwtAuthnFilter(string name, JwtAuthnConfig config, FilterFactoryContext context) : IHttpFilter
{
    /// <summary>The metadata namespace Envoy writes verified tokens to.</summary>
    public const string MetadataNamespace = "envoy.filters.http.jwt_authn";

    // Envoy caps the realm URI at 256 characters of path.
    private const int MaximumUriPathLength = 256;

    private readonly Stat _allowed = context.Stats.Get(Stats.StatTag.Http(context.StatPrefix), "jwt_authn.allowed");
    private readonly Stat _denied = context.Stats.Get(Stats.StatTag.Http(context.StatPrefix), "jwt_authn.denied");
    private readonly Stat _corsBypassed = context.Stats.Get(Stats.StatTag.Http(context.StatPrefix), "jwt_authn.cors_preflight_bypassed");

    public string Name => name;

    public async ValueTask<FilterStatus> OnRequestAsync(HttpStream stream)
    {
        var request = stream.Context.Request;
        if (config.BypassCorsPreflight && IsCorsPreflight(request))
        {
            // A preflight carries no credentials, whatever the requirement says.
            _corsBypassed.Increment();
            _allowed.Increment();
            return FilterStatus.Continue;
        }
        JwtVerifier? verifier;
        if (stream.FilterConfig<JwtPerRouteConfig>(name) is { } perRoute)
        {
            if (perRoute.Disabled)
            {
                verifier = null;
            }
            else if (!config.RequirementMap.TryGetValue(perRoute.RequirementName, out verifier))
            {
                var error = $"Wrong requirement_name: {perRoute.RequirementName}. It should be one of [{config.RequirementNames}]";
                _denied.Increment();
                await stream.SendLocalReplyAsync(StatusCodes.Status403Forbidden, config.StripFailureResponse ? "" : "Failed JWT authentication: " + error,
                    ResponseFlags.None, Details(error)).ConfigureAwait(false);
                return FilterStatus.Stop;
            }
        }
        else
        {
            verifier = config.FindRule(request);
        }
        if (verifier is null)
        {
            _allowed.Increment();
            return FilterStatus.Continue;
        }

        var verify = new VerifyContext(stream, context.Time.GetUtcNow().ToUnixTimeSeconds());
        var status = verifier.Verify(verify);
        if (verify.Extracted is { } extracted)
        {
            var metadata = stream.WritableMetadata;
            foreach (var (key, value) in extracted)
            {
                metadata.Set(MetadataNamespace, key, Value.ForStruct(value));
            }
        }
        if (status == JwtStatus.Ok)
        {
            _allowed.Increment();
            if (verify.ClearRouteCache)
            {
                // Claim headers may now match a different route.
                stream.ResolveRoute();
            }
            return FilterStatus.Continue;
        }

        _denied.Increment();
        var message = status.Message();
        var code = status == JwtStatus.JwtAudienceNotAllowed ? StatusCodes.Status403Forbidden : StatusCodes.Status401Unauthorized;
        if (config.StripFailureResponse)
        {
            await stream.SendLocalReplyAsync(code, "", ResponseFlags.None, Details(message)).ConfigureAwait(false);
            return FilterStatus.Stop;
        }
        var realm = $"Bearer realm=\"{OriginalUri(request)}\"";
        stream.AddResponseHeader("www-authenticate", status == JwtStatus.JwtMissed ? realm : realm + ", error=\"invalid_token\"");
        await stream.SendLocalReplyAsync(code, message, ResponseFlags.None, Details(message)).ConfigureAwait(false);
        return FilterStatus.Stop;
    }

    private static bool IsCorsPreflight(HttpRequest request) =>
        HttpMethods.IsOptions(request.Method)
        && request.Headers.Origin.Count > 0 && request.Headers.Origin[0] is { Length: > 0 }
        && request.Headers.AccessControlRequestMethod.Count > 0 && request.Headers.AccessControlRequestMethod[0] is { Length: > 0 };

    /// <summary>Envoy's response code details: the message with its spaces as underscores, since access logs split on spaces.</summary>
    internal static string Details(string message) => $"jwt_authn_access_denied{{{message.Replace(' ', '_')}}}";

    /// <summary>The realm Envoy names: scheme, host and path without the query.</summary>
    private static string OriginalUri(HttpRequest request)
    {
        var path = request.PathBase.Add(request.Path).ToUriComponent();
        if (path.Length > MaximumUriPathLength)
        {
            path = path[..MaximumUriPathLength];
        }
        return $"{request.Scheme}://{request.Host.Value}{path}";
    }
}
