using Bowline.Proxy.Configuration;
using Bowline.Proxy.Filters.Common.Rbac;
using Bowline.Proxy.Listeners;
using Bowline.Proxy.Stats;
using Google.Protobuf.WellKnownTypes;
using NetworkRbac = Envoy.Extensions.Filters.Network.Rbac.V3.RBAC;

namespace Bowline.Proxy.Filters.Network.Rbac;

/// <summary>
/// Envoy's <c>envoy.filters.network.rbac</c>, compiled once per update: the same rule engine as the HTTP filter over
/// what a connection carries (the verified peer, source and destination addresses, destination port, SNI). Evaluated
/// once per connection as soon as its chain is chosen, before any byte is forwarded: every attribute it can match is
/// known then, so Envoy's ONE_TIME_ON_FIRST_BYTE and CONTINUOUS give the same answer, and a denied client of a
/// server-first protocol never sees the upstream's banner. Request matchers (headers, paths, metadata) are NACKed.
/// </summary>
internal sealed class NetworkRbacConfig
{
    public const string TypeUrl = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC";

    private readonly RbacEngine? _rules;
    private readonly RbacEngine? _shadow;
    private readonly NetworkRbacStats _stats;

    private NetworkRbacConfig(RbacEngine? rules, RbacEngine? shadow, NetworkRbacStats stats)
    {
        _rules = rules;
        _shadow = shadow;
        _stats = stats;
    }

    public static NetworkRbacConfig Compile(Any typedConfig, ProxyStats stats, string where)
    {
        where += " rbac";
        var proto = typedConfig.Unpack<NetworkRbac>();
        XdsFields.Check(proto, where, "rules", "shadow_rules", "stat_prefix", "shadow_rules_stat_prefix", "enforcement_type");
        if (proto.StatPrefix.Length == 0)
        {
            throw new ProxyConfigException($"{where}: stat_prefix is required (Envoy's rule), e.g. \"tcp.\"");
        }
        return new NetworkRbacConfig(
            proto.Rules is { } rules ? RbacEngine.Compile(rules, where + " rules", http: false) : null,
            proto.ShadowRules is { } shadow ? RbacEngine.Compile(shadow, where + " shadow_rules", http: false) : null,
            new NetworkRbacStats(stats, proto.StatPrefix, proto.ShadowRulesStatPrefix));
    }

    /// <summary>Whether the connection may proceed, and the policy that decided (null: none matched); shadow rules are only counted.</summary>
    public (bool Allowed, string? Policy) Decide(ConnectionChain connection)
    {
        var input = new RbacInput(connection);
        if (_shadow is not null)
        {
            (_shadow.Decide(input).Allowed ? _stats.ShadowAllowed : _stats.ShadowDenied).Increment();
        }
        if (_rules is null)
        {
            return (true, null);
        }
        var decision = _rules.Decide(input);
        (decision.Allowed ? _stats.Allowed : _stats.Denied).Increment();
        return decision;
    }
}

/// <summary>Envoy's network RBAC counters: <c>&lt;stat_prefix&gt;rbac.allowed</c>, <c>.denied</c> and the shadow pair.</summary>
internal sealed class NetworkRbacStats(ProxyStats stats, string prefix, string shadowPrefix)
{
    public Stat Allowed { get; } = stats.Get($"{prefix}rbac.allowed");
    public Stat Denied { get; } = stats.Get($"{prefix}rbac.denied");
    public Stat ShadowAllowed { get; } = stats.Get($"{prefix}rbac.{shadowPrefix}shadow_allowed");
    public Stat ShadowDenied { get; } = stats.Get($"{prefix}rbac.{shadowPrefix}shadow_denied");
}
