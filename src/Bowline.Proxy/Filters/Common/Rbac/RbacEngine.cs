using Bowline.Proxy.Configuration;
using Envoy.Config.Rbac.V3;

namespace Bowline.Proxy.Filters.Common.Rbac;

/// <summary>What an RBAC rule set does with the requests its policies match.</summary>
internal enum RbacAction
{
    /// <summary>Only requests some policy matches get through (no policy at all: nothing does).</summary>
    Allow,

    /// <summary>Requests some policy matches are refused; the rest get through.</summary>
    Deny,

    /// <summary>Everything gets through; a match only marks the request for the access log.</summary>
    Log,
}

/// <summary>
/// A compiled <c>envoy.config.rbac.v3.RBAC</c>: the action and the named policies, in Envoy's evaluation order (by
/// name, as Envoy keeps them in an ordered map), so the policy a decision names is the one Envoy would name.
/// </summary>
internal sealed class RbacEngine
{
    private readonly (string Name, RbacMatcher[] Permissions, RbacMatcher[] Principals)[] _policies;

    private RbacEngine(RbacAction action, (string, RbacMatcher[], RbacMatcher[])[] policies)
    {
        Action = action;
        _policies = policies;
    }

    public RbacAction Action { get; }

    public static RbacEngine Compile(RBAC rules, string where, bool http = true)
    {
        XdsFields.Check(rules, where, "action", "policies");
        var action = rules.Action switch
        {
            RBAC.Types.Action.Allow => RbacAction.Allow,
            RBAC.Types.Action.Deny => RbacAction.Deny,
            RBAC.Types.Action.Log => RbacAction.Log,
            _ => throw new ProxyConfigException($"{where}: action {rules.Action} is not supported; use ALLOW, DENY or LOG"),
        };
        var policies = rules.Policies.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p =>
        {
            var pwhere = $"{where} policy {p.Key}";
            XdsFields.Check(p.Value, pwhere, "permissions", "principals");
            if (p.Value.Permissions.Count == 0 || p.Value.Principals.Count == 0)
            {
                throw new ProxyConfigException($"{pwhere}: a policy needs at least one permission and one principal (use any: true to match everything)");
            }
            return (p.Key,
                p.Value.Permissions.Select((permission, i) => RbacMatcher.Permission(permission, $"{pwhere} permissions[{i}]", http)).ToArray(),
                p.Value.Principals.Select((principal, i) => RbacMatcher.Principal(principal, $"{pwhere} principals[{i}]", http)).ToArray());
        }).ToArray();
        return new RbacEngine(action, policies);
    }

    /// <summary>The first policy (by name) that matches: some permission and some principal match the request; else null.</summary>
    public string? MatchingPolicy(in RbacInput input)
    {
        foreach (var (name, permissions, principals) in _policies)
        {
            if (AnyMatches(permissions, input) && AnyMatches(principals, input))
            {
                return name;
            }
        }
        return null;
    }

    /// <summary>Whether the request may pass, and the policy that decided (null: none matched).</summary>
    public (bool Allowed, string? Policy) Decide(in RbacInput input)
    {
        var matched = MatchingPolicy(input);
        return Action switch
        {
            RbacAction.Allow => (matched is not null, matched),
            RbacAction.Deny => (matched is null, matched),
            _ => (true, matched),
        };
    }

    private static bool AnyMatches(RbacMatcher[] matchers, in RbacInput input)
    {
        foreach (var matcher in matchers)
        {
            if (matcher.Matches(input))
            {
                return true;
            }
        }
        return false;
    }
}
