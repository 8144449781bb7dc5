using Bowline.Proxy.Configuration;
using Bowline.Proxy.Filters.Common.Rbac;
using Google.Protobuf.WellKnownTypes;
using FilterProto = Envoy.Extensions.Filters.Http.Rbac.V3.RBAC;
using PerRouteProto = Envoy.Extensions.Filters.Http.Rbac.V3.RBACPerRoute;

namespace Bowline.Proxy.Filters.Http.Rbac;

/// <summary>
/// <c>envoy.filters.http.rbac</c>: role-based access control over the request, its verified peer and its dynamic
/// metadata (Istio's AuthorizationPolicy). <c>rules</c> are enforced, <c>shadow_rules</c> only counted and recorded.
/// A route's <c>RBACPerRoute</c> replaces both; one without <c>rbac</c> switches the filter off for that route.
/// </summary>
internal sealed class RbacFilterFactory : IHttpFilterFactory
{
    public const string TypeUrl = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC";
    public const string PerRouteTypeUrl = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute";

    public string ConfigTypeUrl => TypeUrl;

    string? IHttpFilterFactory.PerRouteTypeUrl => PerRouteTypeUrl;

    public IHttpFilter Create(string name, Any config, FilterFactoryContext context, string where)
    {
        var proto = config.Unpack<FilterProto>();
        return new RbacFilter(name, Compile(proto, where), new RbacStats(context, proto.RulesStatPrefix, proto.ShadowRulesStatPrefix));
    }

    public object CompilePerRoute(Any config, string where)
    {
        var proto = config.Unpack<PerRouteProto>();
        XdsFields.Check(proto, where, "rbac");
        return proto.Rbac is { } rbac ? Compile(rbac, where + " rbac") : RbacRules.Off;
    }

    private static RbacRules Compile(FilterProto proto, string where)
    {
        XdsFields.Check(proto, where, "rules", "shadow_rules", "rules_stat_prefix", "shadow_rules_stat_prefix");
        return new RbacRules(
            proto.Rules is { } rules ? RbacEngine.Compile(rules, where + " rules") : null,
            proto.ShadowRules is { } shadow ? RbacEngine.Compile(shadow, where + " shadow_rules") : null,
            proto.ShadowRulesStatPrefix);
    }
}

/// <summary>The compiled rule sets of one RBAC filter or route override; a null engine is absent (allows everything).</summary>
internal sealed record RbacRules(RbacEngine? Rules, RbacEngine? Shadow, string ShadowPrefix)
{
    /// <summary>A route's RBACPerRoute without rbac: Envoy disables the filter for the route.</summary>
    public static readonly RbacRules Off = new(null, null, "");
}

/// <summary>Envoy's RBAC counters: <c>http.&lt;stat_prefix&gt;.rbac.[&lt;rules_stat_prefix&gt;](allowed|denied)</c> and the shadow pair.</summary>
internal sealed class RbacStats(FilterFactoryContext context, string rulesPrefix, string shadowPrefix)
{
    public Stats.Stat Allowed { get; } = context.Stats.Get(Stats.StatTag.Http(context.StatPrefix), $"rbac.{rulesPrefix}allowed");
    public Stats.Stat Denied { get; } = context.Stats.Get(Stats.StatTag.Http(context.StatPrefix), $"rbac.{rulesPrefix}denied");
    public Stats.Stat ShadowAllowed { get; } = context.Stats.Get(Stats.StatTag.Http(context.StatPrefix), $"rbac.{shadowPrefix}shadow_allowed");
    public Stats.Stat ShadowDenied { get; } = context.Stats.Get(Stats.StatTag.Http(context.StatPrefix), $"rbac.{shadowPrefix}shadow_denied");
}
