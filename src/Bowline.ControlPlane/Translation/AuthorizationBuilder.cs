using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Config.Parsing;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Snapshots;
using Envoy.Config.Rbac.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;
using HttpRbac = Envoy.Extensions.Filters.Http.Rbac.V3.RBAC;
using NetworkFilter = Envoy.Config.Listener.V3.Filter;
using NetworkRbac = Envoy.Extensions.Filters.Network.Rbac.V3.RBAC;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// The AuthorizationPolicies covering one proxy as Envoy RBAC HTTP filters (and network RBAC filters for its TCP
/// ports), as Istio's authz builder makes them
/// (pilot/pkg/security/authz/builder/builder.go): one filter per action present, in Istio's order (CUSTOM's stand-in,
/// AUDIT as action LOG, DENY, ALLOW), each with a policy <c>ns[&lt;ns&gt;]-policy[&lt;name&gt;]-rule[&lt;i&gt;]</c> per rule.
/// Dry-run policies go to the filter's shadow rules. Built once per proxy and config generation; immutable.
/// </summary>
internal sealed class AuthorizationBuilder
{
    public const string RbacFilter = "envoy.filters.http.rbac";
    public const string NetworkRbacFilter = "envoy.filters.network.rbac";

    /// <summary>Istio's stat prefix for the network RBAC filter (pilot's authz builder): counters <c>tcp.rbac.allowed</c>, ...</summary>
    private const string TcpStatPrefix = "tcp.";

    /// <summary>Istio's stat prefixes for shadow (dry-run) rules.</summary>
    private const string DryRunAllowPrefix = "istio_dry_run_allow_";
    private const string DryRunDenyPrefix = "istio_dry_run_deny_";

    /// <summary>Istio's names for the stand-in of a CUSTOM policy whose provider it cannot use.</summary>
    private const string ExtAuthzPrefix = "istio-ext-authz";
    private const string BadCustomSuffix = "-deny-due-to-bad-CUSTOM-action";

    private AuthorizationBuilder(IReadOnlyList<HttpFilter> filters, IReadOnlyList<NetworkFilter> networkFilters, IReadOnlyList<string> droppedForTcp)
    {
        Filters = filters;
        NetworkFilters = networkFilters;
        DroppedForTcp = droppedForTcp;
    }

    /// <summary>The ALLOW rules (Istio's policy names) left out of <see cref="NetworkFilters"/> because they need a request.</summary>
    public IReadOnlyList<string> DroppedForTcp { get; }

    /// <summary>The HTTP RBAC filters, in order; empty when no policy covers the proxy.</summary>
    public IReadOnlyList<HttpFilter> Filters { get; }

    /// <summary>
    /// The same policies as network RBAC filters for the proxy's TCP ports, as Istio's BuildTCP makes them: a rule
    /// of an ALLOW policy that needs a request (hosts, methods, paths, request principals, request headers or claims)
    /// is dropped, so it admits nothing; in DENY and AUDIT policies only those conditions are dropped, so the rule
    /// covers more. Empty when no policy covers the proxy.
    /// </summary>
    public IReadOnlyList<NetworkFilter> NetworkFilters { get; }

    /// <summary>
    /// The filters for <paramref name="node"/>. <paramref name="listenPorts"/> maps a workload port (what policies name)
    /// to the port the proxy accepts it on; a policy naming a port not in it is warned about and its port match fails.
    /// </summary>
    public static AuthorizationBuilder For(ProxyNode node, ServiceIndex index, SnapshotBuilder snapshot, IReadOnlyDictionary<int, int> listenPorts)
    {
        var applying = index.Config.Authorization.ForWorkload(node.Namespace, node.Labels);
        if (applying.IsEmpty)
        {
            return new AuthorizationBuilder([], [], []);
        }
        var security = index.Config.Security;
        var workload = $"{node.Name}.{node.Namespace}";
        foreach (var policy in applying.All)
        {
            Warn(policy, workload, security, listenPorts, snapshot);
        }

        Permission Port(int port) => listenPorts.TryGetValue(port, out var listen)
            ? new Permission { DestinationPort = (uint)listen }
            : AuthorizationMatchers.Not(AuthorizationMatchers.AnyPermission());

        var http = new List<HttpFilter>();
        var tcp = new List<NetworkFilter>();
        var dropped = new List<string>();
        foreach (var forTcp in new[] { false, true })
        {
            var sets = new List<RuleSet>();
            // CUSTOM first, as Istio orders it: Bowline has no external authorizer, so it fails closed the way Istio does
            // for a provider it cannot use: a DENY filter for exactly the requests the CUSTOM rules would have sent to it.
            foreach (var provider in applying.Custom.GroupBy(p => p.Provider!, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                var deny = new RBAC { Action = RBAC.Types.Action.Deny };
                foreach (var policy in provider)
                {
                    var translator = new AuthorizationRuleTranslator(policy with { Action = AuthorizationAction.Deny }, security.TrustDomain, Port, forTcp);
                    for (var i = 0; i < policy.Rules.Count; i++)
                    {
                        deny.Policies[$"{ExtAuthzPrefix}-{provider.Key}-{PolicyName(policy, i)}{BadCustomSuffix}"] = translator.Translate(policy.Rules[i])!;
                    }
                }
                sets.Add(new RuleSet(deny, null, ""));
            }
            AddRuleSet(sets, applying.Audit, RBAC.Types.Action.Log, security.TrustDomain, Port, forTcp, dropped);
            AddRuleSet(sets, applying.Deny, RBAC.Types.Action.Deny, security.TrustDomain, Port, forTcp, dropped);
            AddRuleSet(sets, applying.Allow, RBAC.Types.Action.Allow, security.TrustDomain, Port, forTcp, dropped);
            if (forTcp)
            {
                tcp.AddRange(sets.Select(set => new NetworkFilter
                {
                    Name = NetworkRbacFilter,
                    TypedConfig = Any.Pack(new NetworkRbac { StatPrefix = TcpStatPrefix, Rules = set.Rules, ShadowRules = set.Shadow, ShadowRulesStatPrefix = set.ShadowPrefix }),
                }));
            }
            else
            {
                http.AddRange(sets.Select(set => new HttpFilter
                {
                    Name = RbacFilter,
                    TypedConfig = Any.Pack(new HttpRbac { Rules = set.Rules, ShadowRules = set.Shadow, ShadowRulesStatPrefix = set.ShadowPrefix }),
                }));
            }
        }
        return new AuthorizationBuilder(http, tcp, dropped);
    }

    /// <summary>
    /// Inserts a copy of the filters into <paramref name="hcm"/> right after the JWT filter (whose verified claims
    /// they read) when it has one, else first: before fault, CORS, the local rate limit and the router, as Istio orders
    /// them.
    /// </summary>
    public void InsertInto(HttpConnectionManager hcm)
    {
        var at = Math.Max(hcm.HttpFilters.Select((f, i) => (f, i)).LastOrDefault(x => x.f.Name == AuthorizationMatchers.JwtAuthnFilter, (null!, -1)).Item2 + 1, IstioTelemetryBuilder.FirstPolicyIndex(hcm));
        for (var i = 0; i < Filters.Count; i++)
        {
            hcm.HttpFilters.Insert(at + i, Filters[i].Clone());
        }
    }

    /// <summary>Istio's policy name, the key of the RBAC policy (and of Envoy's per-policy stats).</summary>
    public static string PolicyName(AuthorizationPolicy policy, int rule) => $"ns[{policy.Meta.Namespace}]-policy[{policy.Meta.Name}]-rule[{rule}]";

    /// <summary>One RBAC filter's enforced and shadow rules, for the HTTP or the network filter.</summary>
    private sealed record RuleSet(RBAC? Rules, RBAC? Shadow, string ShadowPrefix);

    private static void AddRuleSet(List<RuleSet> sets, IReadOnlyList<AuthorizationPolicy> policies, RBAC.Types.Action action, string trustDomain, Func<int, Permission> port, bool forTcp, List<string> dropped)
    {
        if (policies.Count == 0)
        {
            return;
        }
        var enforced = new RBAC { Action = action };
        var shadow = new RBAC { Action = action };
        foreach (var policy in policies)
        {
            var target = policy.DryRun ? shadow : enforced;
            var translator = new AuthorizationRuleTranslator(policy, trustDomain, port, forTcp);
            for (var i = 0; i < policy.Rules.Count; i++)
            {
                // Null: an ALLOW rule that needs a request, dropped for TCP (it admits no connection).
                if (translator.Translate(policy.Rules[i]) is { } translated)
                {
                    target.Policies[PolicyName(policy, i)] = translated;
                }
                else
                {
                    dropped.Add(PolicyName(policy, i));
                }
            }
            if (policy.Rules.Count == 0)
            {
                // Explicitly never matching: an ALLOW policy without rules admits nothing, so it denies every request.
                target.Policies[PolicyName(policy, 0)] = AuthorizationRuleTranslator.MatchNever();
            }
        }
        var hasEnforced = policies.Any(p => !p.DryRun);
        var hasShadow = policies.Any(p => p.DryRun);
        sets.Add(new RuleSet(
            // An ALLOW filter whose enforced rules hold no policy still denies every request, as in Istio.
            hasEnforced ? enforced : null,
            hasShadow ? shadow : null,
            // Istio derives the prefix from the shadow rules' action, ALLOW's when there are none.
            (hasShadow ? action : RBAC.Types.Action.Allow) switch
            {
                RBAC.Types.Action.Allow => DryRunAllowPrefix,
                RBAC.Types.Action.Deny => DryRunDenyPrefix,
                _ => "",
            }));
    }

    private static void Warn(AuthorizationPolicy policy, string workload, MeshSecurity security, IReadOnlyDictionary<int, int> listenPorts, SnapshotBuilder snapshot)
    {
        var where = $"{policy.Meta} ({policy.Meta.File})";
        if (policy.Action == AuthorizationAction.Custom)
        {
            snapshot.Warn($"{where}: action CUSTOM (provider {policy.Provider}) needs an external authorizer, which Bowline does not have yet: on workload {workload} the requests its rules match are DENIED (fail closed, as Istio does when a provider is missing)");
        }
        var identities = policy.Rules.SelectMany(IdentityFields).Distinct(StringComparer.Ordinal).ToList();
        if (!security.MeshMtls && identities.Count > 0)
        {
            var effect = policy.Action == AuthorizationAction.Allow
                ? "so those rules admit nothing (their not* forms included: Bowline requires an identity for them in ALLOW policies)"
                : "so their positive forms never match (they deny nothing) and their not* forms match every request";
            snapshot.Warn($"{where}: {string.Join(", ", identities)} match the peer's mTLS identity, but mesh mTLS is off (the control plane's MeshMtls option), so no request to workload {workload} has one: {effect}");
        }
        var ports = policy.Rules.SelectMany(Ports).Where(p => !listenPorts.ContainsKey(p)).Distinct().Order().ToList();
        if (ports.Count > 0)
        {
            snapshot.Warn($"{where}: port {string.Join(", ", ports)} is not a port of workload {workload} ({string.Join(", ", listenPorts.Keys.Order())}), so no request there can match it");
        }
    }

    private static IEnumerable<string> IdentityFields(AuthorizationRule rule)
    {
        foreach (var source in rule.From)
        {
            foreach (var (name, count) in new[]
            {
                ("principals", source.Principals.Count + source.NotPrincipals.Count), ("namespaces", source.Namespaces.Count + source.NotNamespaces.Count),
                ("serviceAccounts", source.ServiceAccounts.Count + source.NotServiceAccounts.Count), ("trustDomains", source.TrustDomains.Count + source.NotTrustDomains.Count),
            })
            {
                if (count > 0)
                {
                    yield return name;
                }
            }
        }
        foreach (var condition in rule.When.Where(c => AuthorizationValues.IdentityKeys.Contains(c.Key)))
        {
            yield return condition.Key;
        }
    }

    private static IEnumerable<int> Ports(AuthorizationRule rule) =>
        rule.To.SelectMany(o => o.Ports.Concat(o.NotPorts))
            .Concat(rule.When.Where(c => c.Key == "destination.port").SelectMany(c => c.Values.Concat(c.NotValues)).Select(v => int.Parse(v, System.Globalization.CultureInfo.InvariantCulture)));
}
