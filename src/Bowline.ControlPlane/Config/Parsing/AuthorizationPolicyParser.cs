namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>
/// Istio <c>AuthorizationPolicy</c> with Istio's rules (pkg/config/validation ValidateAuthorizationPolicy and the CRD's
/// schema), value rules in <see cref="AuthorizationValues"/>. Bowline refuses, as errors, what its sidecars cannot
/// enforce as written (targetRefs, path templates) rather than enforce less than the policy says.
/// </summary>
internal static class AuthorizationPolicyParser
{
    public const string DryRunAnnotation = "istio.io/dry-run";

    /// <summary>The CRD's limits.</summary>
    private const int MaxRules = 512;
    private const int MaxTargetRefs = 16;
    private const int MaxServiceAccounts = 16;

    private static readonly (string Group, string Kind)[] TargetKinds = [("", "Service"), ("networking.istio.io", "ServiceEntry"), ("gateway.networking.k8s.io", "Gateway"), ("gateway.networking.k8s.io", "GatewayClass")];

    public static MeshResource? Parse(ResourceMeta meta, FieldReader spec)
    {
        var before = spec.ErrorCount;
        var selector = PolicySelectorParser.Selector(spec);
        TargetRefs(spec);
        var action = Action(spec);
        string? provider = null;
        if (spec.Map("provider") is { } providerReader)
        {
            provider = providerReader.String("name");
            providerReader.Finish();
            if (action != AuthorizationAction.Custom)
            {
                spec.Error("provider", $"provider is only for action CUSTOM, not {action.ToString().ToUpperInvariant()}; remove it");
            }
        }
        var rules = spec.MapList("rules").Select(r => Rule(r, action)).ToList();
        // Istio's protobuf cannot tell `rules: []` from no rules.
        var hasRules = rules.Count > 0;
        if (rules.Count > MaxRules)
        {
            spec.Error("rules", $"{rules.Count} rules are too many; at most {MaxRules}");
        }
        switch (action)
        {
            case AuthorizationAction.Deny when !hasRules:
                spec.Error("rules", "a DENY policy without rules never matches a request; add an empty rule (rules: [{}]) to deny every request");
                break;
            case AuthorizationAction.Custom when !hasRules:
                spec.Error("rules", "a CUSTOM policy without rules never sends a request to its provider; add an empty rule (rules: [{}]) to send every request");
                break;
            case AuthorizationAction.Custom when string.IsNullOrEmpty(provider):
                spec.Error("provider", "a CUSTOM policy needs provider.name, the extension provider that authorizes its requests");
                break;
        }
        if (action == AuthorizationAction.Custom)
        {
            // Ignoring it would let through what the operator meant to send to an authorizer: fail closed instead.
            spec.Warning("action", "CUSTOM needs an external authorizer, which Bowline does not have yet, so the policy is not delegated: every request its rules match is DENIED (Bowline fails closed, as Istio does when a CUSTOM provider is missing)");
        }
        var dryRun = DryRun(meta, action, spec);
        return spec.ErrorCount == before ? new AuthorizationPolicy(meta, selector, action, provider, rules, dryRun) : null;
    }

    private static AuthorizationAction Action(FieldReader spec)
    {
        var action = spec.String("action");
        switch (action)
        {
            case null or "ALLOW":
                return AuthorizationAction.Allow;
            case "DENY":
                return AuthorizationAction.Deny;
            case "AUDIT":
                return AuthorizationAction.Audit;
            case "CUSTOM":
                return AuthorizationAction.Custom;
            default:
                spec.Error("action", $"'{action}' must be ALLOW, DENY, AUDIT or CUSTOM");
                return AuthorizationAction.Allow;
        }
    }

    private static bool DryRun(ResourceMeta meta, AuthorizationAction action, FieldReader spec)
    {
        if (!meta.Annotations.TryGetValue(DryRunAnnotation, out var value))
        {
            return false;
        }
        if (action is not (AuthorizationAction.Allow or AuthorizationAction.Deny))
        {
            spec.ErrorAt("metadata.annotations", $"the {DryRunAnnotation} annotation is only for ALLOW and DENY policies, not {action.ToString().ToUpperInvariant()}; remove it");
            return false;
        }
        // Go's strconv.ParseBool, which Istio uses.
        switch (value)
        {
            case "1" or "t" or "T" or "true" or "TRUE" or "True":
                return true;
            case "0" or "f" or "F" or "false" or "FALSE" or "False":
                return false;
            default:
                spec.ErrorAt("metadata.annotations", $"{DryRunAnnotation}: '{value}' must be \"true\" or \"false\"");
                return false;
        }
    }

    /// <summary>
    /// Istio attaches a policy with targetRefs only to Gateway API gateways and waypoints, never to a sidecar (its
    /// policyattachment.go ignores such a policy for a sidecar): Bowline has neither, so it refuses them.
    /// </summary>
    private static void TargetRefs(FieldReader spec)
    {
        var refs = new List<FieldReader>();
        if (spec.Map("targetRef") is { } single)
        {
            refs.Add(single);
        }
        var list = spec.MapList("targetRefs");
        refs.AddRange(list);
        if (list.Count > MaxTargetRefs)
        {
            spec.Error("targetRefs", $"{list.Count} targetRefs are too many; at most {MaxTargetRefs}");
        }
        var selectors = new[] { "selector", "targetRef", "targetRefs" }.Count(k => k == "targetRefs" ? list.Count > 0 : spec.Has(k));
        if (selectors > 1)
        {
            spec.Error("selector", "only one of selector, targetRef and targetRefs can be set");
        }
        var before = spec.ErrorCount;
        foreach (var reference in refs)
        {
            var group = reference.String("group") ?? "";
            var kind = reference.String("kind", required: true);
            var name = reference.String("name", required: true);
            if (reference.String("namespace") is { Length: > 0 })
            {
                reference.Error("namespace", "must not be set: cross-namespace references are not supported (by Istio either)");
            }
            reference.Finish();
            if (kind is not null && name is { Length: > 0 } && !TargetKinds.Contains((group, kind)))
            {
                reference.Error("kind", $"'{(group.Length == 0 ? "" : group + "/")}{kind}' cannot be a target; Istio allows Service, networking.istio.io/ServiceEntry and gateway.networking.k8s.io/Gateway or GatewayClass");
            }
        }
        if (refs.Count > 0 && spec.ErrorCount == before)
        {
            spec.Error(spec.Has("targetRef") ? "targetRef" : "targetRefs",
                "targetRefs attach a policy to a Gateway API gateway or a waypoint, which Bowline does not have, and Istio never applies such a policy to a sidecar; to authorize requests to workloads, select them with selector.matchLabels");
        }
    }

    private static AuthorizationRule Rule(FieldReader rule, AuthorizationAction action)
    {
        if (rule.IsEmptyList("from"))
        {
            rule.Error("from", "from must not be an empty list; remove it to match requests from any source, or add a source");
        }
        if (rule.IsEmptyList("to"))
        {
            rule.Error("to", "to must not be an empty list; remove it to match any operation, or add an operation");
        }
        if (rule.IsEmptyList("when"))
        {
            rule.Error("when", "when must not be an empty list; remove it, or add a condition");
        }
        var from = new List<AuthorizationSource>();
        foreach (var entry in rule.MapList("from"))
        {
            var source = entry.Map("source");
            entry.Finish();
            if (source is null)
            {
                entry.Error("source", "each from entry needs a source; remove the entry to match any source");
                continue;
            }
            from.Add(Source(source, action));
        }
        var to = new List<AuthorizationOperation>();
        foreach (var entry in rule.MapList("to"))
        {
            var operation = entry.Map("operation");
            entry.Finish();
            if (operation is null)
            {
                entry.Error("operation", "each to entry needs an operation; remove the entry to match any operation");
                continue;
            }
            to.Add(Operation(operation));
        }
        var when = rule.MapList("when").Select(c => Condition(c, action)).OfType<AuthorizationCondition>().ToList();
        rule.Finish();
        return new AuthorizationRule(from, to, when);
    }

    private static AuthorizationSource Source(FieldReader source, AuthorizationAction action)
    {
        IReadOnlyList<string> Values(string key, Func<string, string?>? check = null)
        {
            var values = source.StringList(key);
            for (var i = 0; i < values.Count; i++)
            {
                if ((values[i].Length == 0 ? "an empty value is not allowed; remove it" : check?.Invoke(values[i])) is { } problem)
                {
                    source.ErrorAt($"{source.Path}.{key}[{i}]", problem);
                }
            }
            if (action == AuthorizationAction.Custom && values.Count > 0 && key is not ("ipBlocks" or "notIpBlocks" or "remoteIpBlocks" or "notRemoteIpBlocks"))
            {
                source.Error(key, $"{key} cannot be used with action CUSTOM (as in Istio): only ipBlocks and remoteIpBlocks can");
            }
            return values;
        }

        var result = new AuthorizationSource(
            Values("principals", AuthorizationValues.Principal), Values("notPrincipals", AuthorizationValues.Principal),
            Values("requestPrincipals", AuthorizationValues.Wildcard), Values("notRequestPrincipals", AuthorizationValues.Wildcard),
            Values("namespaces"), Values("notNamespaces"),
            Values("serviceAccounts", AuthorizationValues.ServiceAccount), Values("notServiceAccounts", AuthorizationValues.ServiceAccount),
            Values("trustDomains", AuthorizationValues.TrustDomain), Values("notTrustDomains", AuthorizationValues.TrustDomain),
            Values("ipBlocks", AuthorizationValues.IpOrCidr), Values("notIpBlocks", AuthorizationValues.IpOrCidr),
            Values("remoteIpBlocks", AuthorizationValues.IpOrCidr), Values("notRemoteIpBlocks", AuthorizationValues.IpOrCidr));
        source.Finish();
        var lists = new[]
        {
            result.Principals, result.NotPrincipals, result.RequestPrincipals, result.NotRequestPrincipals, result.Namespaces, result.NotNamespaces,
            result.ServiceAccounts, result.NotServiceAccounts, result.TrustDomains, result.NotTrustDomains, result.IpBlocks, result.NotIpBlocks,
            result.RemoteIpBlocks, result.NotRemoteIpBlocks,
        };
        if (lists.All(l => l.Count == 0))
        {
            source.Error("a source must set at least one field (principals, namespaces, ipBlocks, ...); remove the from entry to match any source");
        }
        if (result.ServiceAccounts.Count + result.NotServiceAccounts.Count > 0 && result.Principals.Count + result.NotPrincipals.Count + result.Namespaces.Count + result.NotNamespaces.Count > 0)
        {
            source.Error("serviceAccounts", "serviceAccounts cannot be combined with principals or namespaces in one source; use one form or the other");
        }
        foreach (var (key, values) in new[] { ("serviceAccounts", result.ServiceAccounts), ("notServiceAccounts", result.NotServiceAccounts) })
        {
            if (values.Count > MaxServiceAccounts)
            {
                source.Error(key, $"{values.Count} service accounts are too many; at most {MaxServiceAccounts}");
            }
        }
        return result;
    }

    private static AuthorizationOperation Operation(FieldReader operation)
    {
        IReadOnlyList<string> Values(string key, Func<string, string?> check)
        {
            var values = operation.StringList(key);
            for (var i = 0; i < values.Count; i++)
            {
                if ((values[i].Length == 0 ? "an empty value is not allowed; remove it" : check(values[i])) is { } problem)
                {
                    operation.ErrorAt($"{operation.Path}.{key}[{i}]", problem);
                }
            }
            return values;
        }

        IReadOnlyList<int> Ports(string key)
        {
            var ports = new List<int>();
            foreach (var text in Values(key, v => AuthorizationValues.Port(v, out _)))
            {
                if (AuthorizationValues.Port(text, out var port) is null)
                {
                    ports.Add(port);
                }
            }
            return ports;
        }

        var result = new AuthorizationOperation(
            Values("hosts", AuthorizationValues.Wildcard), Values("notHosts", AuthorizationValues.Wildcard),
            Ports("ports"), Ports("notPorts"),
            Values("methods", AuthorizationValues.Wildcard), Values("notMethods", AuthorizationValues.Wildcard),
            Values("paths", AuthorizationValues.Path), Values("notPaths", AuthorizationValues.Path));
        var given = new[] { "hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths" }.Any(k => operation.Has(k) && !operation.IsEmptyList(k));
        operation.Finish();
        if (!given)
        {
            operation.Error("an operation must set at least one field (hosts, ports, methods, paths or their not* forms); remove the to entry to match any operation");
        }
        return result;
    }

    private static AuthorizationCondition? Condition(FieldReader condition, AuthorizationAction action)
    {
        var key = condition.String("key", required: true);
        var values = condition.StringList("values");
        var notValues = condition.StringList("notValues");
        condition.Finish();
        if (key is null)
        {
            return null;
        }
        if (key.Length == 0)
        {
            condition.Error("key", "the key must not be empty; name an attribute such as request.headers[User-Agent]");
            return null;
        }
        if (AuthorizationValues.Key(key, out _) is { } badKey)
        {
            condition.Error("key", badKey);
            return null;
        }
        if (values.Count == 0 && notValues.Count == 0)
        {
            condition.Error("values", $"at least one of values or notValues must be set for key {key}");
        }
        if (action == AuthorizationAction.Custom && (AuthorizationValues.IdentityKeys.Contains(key) || key.StartsWith("request.auth.", StringComparison.Ordinal)))
        {
            condition.Error("key", $"{key} cannot be used with action CUSTOM (as in Istio)");
        }
        foreach (var (field, list) in new[] { ("values", values), ("notValues", notValues) })
        {
            for (var i = 0; i < list.Count; i++)
            {
                if ((list[i].Length == 0 ? "an empty value is not allowed; remove it" : AuthorizationValues.ConditionValue(key, list[i])) is { } problem)
                {
                    condition.ErrorAt($"{condition.Path}.{field}[{i}]", $"invalid value for key {key}: {problem}");
                }
            }
        }
        return new AuthorizationCondition(key, values, notValues);
    }
}
