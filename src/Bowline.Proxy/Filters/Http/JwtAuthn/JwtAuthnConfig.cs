using Bowline.Proxy.Routing;
using Microsoft.AspNetCore.Http;

namespace Bowline.Proxy.Filters.Http.JwtAuthn;

/// <summary>A compiled <c>RequirementRule</c>: the route match (the proxy's own route matcher) and its verifier, null for "no JWT needed".</summary>
internal sealed record JwtRule(RouteEntry Match, JwtVerifier? Verifier);

/// <summary>
/// A compiled <c>JwtAuthentication</c>: rules in order, the named requirements routes pick with
/// <c>PerRouteConfig.requirement_name</c>, and the providers behind them with their keys already parsed.
/// </summary>
/// <remarks>Immutable and thread-safe; rebuilt on every config update, never per request.</remarks>
internal sealed class JwtAuthnConfig(
    JwtRule[] rules,
    IReadOnlyDictionary<string, JwtVerifier> requirementMap,
    bool bypassCorsPreflight,
    bool stripFailureResponse)
{
    public IReadOnlyDictionary<string, JwtVerifier> RequirementMap { get; } = requirementMap;

    /// <summary>The map's names, sorted and comma-joined, for Envoy's "Wrong requirement_name" message.</summary>
    public string RequirementNames { get; } = string.Join(",", requirementMap.Keys.Order(StringComparer.Ordinal));

    public bool BypassCorsPreflight { get; } = bypassCorsPreflight;

    public bool StripFailureResponse { get; } = stripFailureResponse;

    /// <summary>The verifier of the first rule that matches, or null when none does or that rule requires nothing.</summary>
    public JwtVerifier? FindRule(HttpRequest request)
    {
        foreach (var rule in rules)
        {
            if (rule.Match.Matches(request))
            {
                return rule.Verifier;
            }
        }
        return null;
    }
}

/// <summary>A compiled <c>PerRouteConfig</c>: off for the route, or the name of the requirement to apply.</summary>
internal sealed record JwtPerRouteConfig(bool Disabled, string RequirementName);
