using Bowline.ControlPlane.Config;

namespace Bowline.ControlPlane.Tests.Config;

/// <summary>
/// Istio's AuthorizationPolicy rules (ValidateAuthorizationPolicy and its helpers in pkg/config/security, the CRD's
/// schema) and the few Bowline adds, one row each: rejected with an error on the named field whose message says what
/// to do, or accepted.
/// </summary>
public sealed class AuthorizationPolicyValidationTests
{
    private static string Policy(string spec, string metadata = "name: policy, namespace: default") =>
        $"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{{metadata}}}\nspec:\n" + ValidationRows.Indent(spec, "  ");

    private static string Source(string fields) => $"rules: [{{from: [{{source: {{{fields}}}}}]}}]";

    private static string Operation(string fields) => $"rules: [{{to: [{{operation: {{{fields}}}}}]}}]";

    private static string When(string condition) => $"rules: [{{when: [{condition}]}}]";

    public static TheoryData<string, string, string?, string?> Specs => new()
    {
        // What Istio accepts.
        { "allow nothing", "{}", null, null },
        { "allow all", "rules: [{}]", null, null },
        { "deny all", "action: DENY\nrules: [{}]", null, null },
        { "audit", "action: AUDIT\nrules: [{}]", null, null },
        { "rules without effect are fine for ALLOW", "action: ALLOW\nrules: []", null, null },
        { "full source", Source("principals: [a/ns/b/sa/c, 'pre*', '*suf', '*'], notPrincipals: [x], requestPrincipals: ['iss/sub', '*'], notRequestPrincipals: [y], namespaces: [ns, 'ns-*-mid'], notNamespaces: [n], ipBlocks: [1.2.3.4, 10.0.0.0/8, '2001:db8::/32'], notIpBlocks: ['::1'], remoteIpBlocks: [5.6.7.8], notRemoteIpBlocks: [9.9.0.0/16]"), null, null },
        { "service accounts", Source("serviceAccounts: [sa, other/sa], notServiceAccounts: [x]"), null, null },
        { "trust domains", Source("trustDomains: [cluster.local, '*.local'], notTrustDomains: [old]"), null, null },
        { "full operation", Operation("hosts: [a.com, '*.b.com', 'c.*', '*'], notHosts: [d], ports: ['80', '65535'], notPorts: ['1'], methods: [GET, '*'], notMethods: [POST], paths: [/a, '/b/*', '*.js', '*'], notPaths: [/c]"), null, null },
        { "every when key", "rules: [{when: [{key: 'request.headers[User-Agent]', values: ['curl*']}, {key: source.ip, values: [1.2.3.4]}, {key: remote.ip, notValues: [10.0.0.0/8]}, {key: source.namespace, values: [foo]}, {key: source.principal, values: ['cluster.local/ns/foo/sa/bar']}, {key: source.serviceAccount, values: [foo/bar]}, {key: source.trustDomain, values: [cluster.local]}, {key: request.auth.principal, values: ['iss/sub']}, {key: 'request.auth.claims[groups]', values: [admin]}, {key: 'request.auth.claims[a][b]', values: [c]}, {key: request.auth.audiences, values: [aud]}, {key: request.auth.presenter, values: [azp]}, {key: destination.ip, values: [10.1.2.3]}, {key: destination.port, values: ['8080']}, {key: connection.sni, values: ['*.example.com']}, {key: 'experimental.envoy.filters.network.mysql_proxy[db.table]', values: ['[update]']}]}]", null, null },
        { "custom with a provider", "action: CUSTOM\nprovider: {name: ext-authz}\nrules: [{to: [{operation: {paths: ['/admin/*']}}]}]", null, null },

        // Actions and provider.
        { "unknown action", "action: PERMIT\nrules: [{}]", "spec.action", "must be ALLOW, DENY, AUDIT or CUSTOM" },
        { "deny without rules", "action: DENY", "spec.rules", "add an empty rule (rules: [{}])" },
        { "deny with empty rules", "action: DENY\nrules: []", "spec.rules", "add an empty rule (rules: [{}])" },
        { "custom without rules", "action: CUSTOM\nprovider: {name: x}", "spec.rules", "never sends a request to its provider" },
        { "custom without provider", "action: CUSTOM\nrules: [{}]", "spec.provider", "needs provider.name" },
        { "custom with an empty provider name", "action: CUSTOM\nprovider: {name: ''}\nrules: [{}]", "spec.provider", "needs provider.name" },
        { "provider with allow", "provider: {name: x}\nrules: [{}]", "spec.provider", "only for action CUSTOM, not ALLOW" },
        { "custom with principals", "action: CUSTOM\nprovider: {name: x}\n" + Source("principals: [a]"), "spec.rules[0].from[0].source.principals", "cannot be used with action CUSTOM" },
        { "custom with request principals", "action: CUSTOM\nprovider: {name: x}\n" + Source("requestPrincipals: [a]"), "spec.rules[0].from[0].source.requestPrincipals", "cannot be used with action CUSTOM" },
        { "custom with a claim", "action: CUSTOM\nprovider: {name: x}\n" + When("{key: 'request.auth.claims[a]', values: [b]}"), "spec.rules[0].when[0].key", "cannot be used with action CUSTOM" },
        { "custom with source.namespace", "action: CUSTOM\nprovider: {name: x}\n" + When("{key: source.namespace, values: [b]}"), "spec.rules[0].when[0].key", "cannot be used with action CUSTOM" },

        // Selector and targets.
        { "selector wildcard", "selector: {matchLabels: {app: 'rev*'}}", "spec.selector.matchLabels", "wildcards are not allowed" },
        { "selector empty key", "selector: {matchLabels: {'': x}}", "spec.selector.matchLabels", "must not be empty" },
        { "selector value too long", $"selector: {{matchLabels: {{app: {new string('a', 64)}}}}}", "spec.selector.matchLabels", "at most 63" },
        { "target ref", "targetRef: {kind: Service, name: reviews}", "spec.targetRef", "select them with selector.matchLabels" },
        { "target refs", "targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]", "spec.targetRefs", "Istio never applies such a policy to a sidecar" },
        { "target ref of a bad kind", "targetRefs: [{kind: Deployment, group: apps, name: reviews}]", "spec.targetRefs[0].kind", "cannot be a target" },
        { "target ref in another namespace", "targetRefs: [{kind: Service, name: reviews, namespace: other}]", "spec.targetRefs[0].namespace", "cross-namespace references are not supported" },
        { "target ref without a name", "targetRefs: [{kind: Service}]", "spec.targetRefs[0].name", "is required" },
        { "selector and target ref", "selector: {matchLabels: {app: x}}\ntargetRef: {kind: Service, name: reviews}", "spec.selector", "only one of selector, targetRef and targetRefs" },

        // Empty lists and entries.
        { "null rule", "rules: [~]", "spec.rules[0]", "expected a mapping" },
        { "empty from", "rules: [{from: []}]", "spec.rules[0].from", "must not be an empty list" },
        { "empty to", "rules: [{to: []}]", "spec.rules[0].to", "must not be an empty list" },
        { "empty when", "rules: [{when: []}]", "spec.rules[0].when", "must not be an empty list" },
        { "from without source", "rules: [{from: [{}]}]", "spec.rules[0].from[0].source", "needs a source" },
        { "empty source", Source(""), "spec.rules[0].from[0].source", "must set at least one field" },
        { "to without operation", "rules: [{to: [{}]}]", "spec.rules[0].to[0].operation", "needs an operation" },
        { "empty operation", Operation(""), "spec.rules[0].to[0].operation", "must set at least one field" },
        { "operation with only empty lists", Operation("methods: []"), "spec.rules[0].to[0].operation", "must set at least one field" },
        { "unknown source field", Source("principal: [a]"), "spec.rules[0].from[0].source.principal", "unknown field" },
        { "unknown rule field", "rules: [{from: [{source: {principals: [a]}}], then: []}]", "spec.rules[0].then", "unknown field" },

        // Values.
        { "empty principal", Source("principals: ['']"), "spec.rules[0].from[0].source.principals[0]", "empty value" },
        { "empty namespace", Source("notNamespaces: ['']"), "spec.rules[0].from[0].source.notNamespaces[0]", "empty value" },
        { "empty method", Operation("methods: ['']"), "spec.rules[0].to[0].operation.methods[0]", "empty value" },
        { "principal with the scheme", Source("principals: ['spiffe://cluster.local/ns/a/sa/b']"), "spec.rules[0].from[0].source.principals[0]", "without the spiffe:// scheme" },
        { "wildcard in the middle", Source("principals: ['cluster.local/*/sa/b']"), "spec.rules[0].from[0].source.principals[0]", "only allowed alone, at the start" },
        { "two wildcards", Operation("hosts: ['*.example.*']"), "spec.rules[0].to[0].operation.hosts[0]", "at most one '*'" },
        { "bad ip", Source("ipBlocks: [1.2.3]"), "spec.rules[0].from[0].source.ipBlocks[0]", "is not an IP address" },
        { "ip with leading zeros", Source("ipBlocks: [01.2.3.4]"), "spec.rules[0].from[0].source.ipBlocks[0]", "is not an IP address" },
        { "bad cidr", Source("notRemoteIpBlocks: [10.0.0.0/33]"), "spec.rules[0].from[0].source.notRemoteIpBlocks[0]", "prefix length must be 0 to 32" },
        { "bad ipv6 cidr", Source("remoteIpBlocks: ['2001:db8::/129']"), "spec.rules[0].from[0].source.remoteIpBlocks[0]", "prefix length must be 0 to 128" },
        { "port zero", Operation("ports: ['0']"), "spec.rules[0].to[0].operation.ports[0]", "from 1 to 65535" },
        { "port too high", Operation("notPorts: ['65536']"), "spec.rules[0].to[0].operation.notPorts[0]", "from 1 to 65535" },
        { "port not a number", Operation("ports: [http]"), "spec.rules[0].to[0].operation.ports[0]", "is not a port" },
        { "service account wildcard", Source("serviceAccounts: ['sa-*']"), "spec.rules[0].from[0].source.serviceAccounts[0]", "wildcards are not allowed" },
        { "service account with two slashes", Source("serviceAccounts: [a/b/c]"), "spec.rules[0].from[0].source.serviceAccounts[0]", "'namespace/serviceAccount'" },
        { "service account with an empty namespace", Source("serviceAccounts: [/b]"), "spec.rules[0].from[0].source.serviceAccounts[0]", "'namespace/serviceAccount'" },
        { "service accounts with principals", Source("serviceAccounts: [a], principals: [b]"), "spec.rules[0].from[0].source.serviceAccounts", "cannot be combined with principals or namespaces" },
        { "too many service accounts", Source($"serviceAccounts: [{string.Join(", ", Enumerable.Range(0, 17).Select(i => $"sa{i}"))}]"), "spec.rules[0].from[0].source.serviceAccounts", "at most 16" },
        { "trust domain with a slash", Source("trustDomains: [a/b]"), "spec.rules[0].from[0].source.trustDomains[0]", "must not contain '/'" },
        { "path template", Operation("paths: ['/api/{*}/x']"), "spec.rules[0].to[0].operation.paths[0]", "path templates ({*}, {**}) are not supported by Bowline yet" },
        { "path template not last", Operation("notPaths: ['/{**}/a/{*}']"), "spec.rules[0].to[0].operation.notPaths[0]", "{**} must be the last operator" },
        { "braces outside a template", Operation("paths: ['/a/{id}']"), "spec.rules[0].to[0].operation.paths[0]", "outside a path template" },

        // Conditions.
        { "when without key", When("{values: [a]}"), "spec.rules[0].when[0].key", "is required" },
        { "when with an empty key", When("{key: '', values: [a]}"), "spec.rules[0].when[0].key", "must not be empty" },
        { "when without values", When("{key: source.ip}"), "spec.rules[0].when[0].values", "at least one of values or notValues" },
        { "unknown key", When("{key: request.method, values: [GET]}"), "spec.rules[0].when[0].key", "unknown attribute 'request.method'" },
        { "header without brackets", When("{key: request.headers, values: [a]}"), "spec.rules[0].when[0].key", "request.headers[<header name>]" },
        { "header with an empty name", When("{key: 'request.headers[]', values: [a]}"), "spec.rules[0].when[0].key", "request.headers[<header name>]" },
        { "header with junk before the bracket", When("{key: 'request.headersx[a]', values: [a]}"), "spec.rules[0].when[0].key", "request.headers[<header name>]" },
        { "claim without brackets", When("{key: request.auth.claims.groups, values: [a]}"), "spec.rules[0].when[0].key", "request.auth.claims[<claim>]" },
        { "envoy filter without a key", When("{key: experimental.envoy.filters.a.b, values: [a]}"), "spec.rules[0].when[0].key", "experimental.envoy.filters.<filter name>[<metadata key>]" },
        { "destination.namespace", When("{key: destination.namespace, values: [a]}"), "spec.rules[0].when[0].key", "replaced by the policy's metadata.namespace" },
        { "destination.labels", When("{key: 'destination.labels[app]', values: [a]}"), "spec.rules[0].when[0].key", "replaced by the workload selector" },
        { "destination.user", When("{key: destination.user, values: [a]}"), "spec.rules[0].when[0].key", "only supported in Istio's v1alpha1" },
        { "bad source.ip", When("{key: source.ip, values: [nope]}"), "spec.rules[0].when[0].values[0]", "invalid value for key source.ip" },
        { "bad destination.port", When("{key: destination.port, notValues: ['99999']}"), "spec.rules[0].when[0].notValues[0]", "invalid value for key destination.port" },
        { "bad source.serviceAccount", When("{key: source.serviceAccount, values: ['a*']}"), "spec.rules[0].when[0].values[0]", "wildcards are not allowed" },
        { "bad source.principal", When("{key: source.principal, values: ['spiffe://td/ns/a/sa/b']}"), "spec.rules[0].when[0].values[0]", "without the spiffe:// scheme" },
        { "empty when value", When("{key: 'request.headers[x]', values: ['']}"), "spec.rules[0].when[0].values[0]", "empty value" },
        { "wildcard in a header value", When("{key: 'request.headers[x]', values: ['a*b']}"), "spec.rules[0].when[0].values[0]", "only allowed alone" },
    };

    [Theory]
    [MemberData(nameof(Specs))]
    public void Parse_AuthorizationPolicy_FollowsIstiosValidation(string rule, string spec, string? errorField, string? message)
    {
        var parsed = ValidationRows.Check("authz.yaml", Policy(spec), rule, errorField);
        if (message is not null)
        {
            var errors = parsed.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error && d.Field == errorField).ToList();
            Assert.True(errors.Any(e => e.Message.Contains(message, StringComparison.Ordinal)), $"{rule}: no error on {errorField} says '{message}':\n{string.Join("\n", errors)}");
            Assert.All(errors, e => Assert.Equal("AuthorizationPolicy default/policy", e.Resource));
        }
    }

    [Theory]
    [InlineData("security.istio.io/v1")]
    [InlineData("security.istio.io/v1beta1")]
    public void Parse_AuthorizationPolicy_IsReadIntoTheModel(string apiVersion)
    {
        var parsed = ConfigFileParser.Parse("authz.yaml", $$$"""
            apiVersion: {{{apiVersion}}}
            kind: AuthorizationPolicy
            metadata: {name: reviews-viewer, namespace: bookinfo}
            spec:
              selector: {matchLabels: {app: reviews}}
              action: DENY
              rules:
              - from:
                - source: {principals: ["cluster.local/ns/default/sa/bookinfo-productpage"], notIpBlocks: [10.0.0.0/8]}
                to:
                - operation: {methods: [GET], ports: ["9080"], notPaths: ["/admin*"]}
                when:
                - {key: "request.auth.claims[groups]", values: [admin], notValues: [guest]}
            """);

        Assert.Empty(parsed.Diagnostics);
        var policy = Assert.IsType<AuthorizationPolicy>(Assert.Single(parsed.Resources));
        Assert.Equal(("bookinfo", "reviews", AuthorizationAction.Deny, false), (policy.Meta.Namespace, policy.Selector["app"], policy.Action, policy.DryRun));
        var rule = Assert.Single(policy.Rules);
        var source = Assert.Single(rule.From);
        Assert.Equal(["cluster.local/ns/default/sa/bookinfo-productpage"], source.Principals);
        Assert.Equal(["10.0.0.0/8"], source.NotIpBlocks);
        var operation = Assert.Single(rule.To);
        Assert.Equal(["GET"], operation.Methods);
        Assert.Equal([9080], operation.Ports);
        Assert.Equal(["/admin*"], operation.NotPaths);
        Assert.Equal(new AuthorizationCondition("request.auth.claims[groups]", ["admin"], ["guest"]), Assert.Single(rule.When), new ConditionComparer());
    }

    [Theory]
    [InlineData("ALLOW", "\"true\"", true)]
    [InlineData("DENY", "\"True\"", true)]
    [InlineData("DENY", "\"1\"", true)]
    [InlineData("ALLOW", "\"false\"", false)]
    public void Parse_DryRunAnnotation_IsReadAsGoReadsABool(string action, string value, bool dryRun)
    {
        var parsed = ConfigFileParser.Parse("authz.yaml", Policy($"action: {action}\nrules: [{{}}]", $"name: policy, annotations: {{istio.io/dry-run: {value}}}"));

        Assert.Empty(parsed.Diagnostics);
        Assert.Equal(dryRun, Assert.IsType<AuthorizationPolicy>(Assert.Single(parsed.Resources)).DryRun);
    }

    [Theory]
    [InlineData("ALLOW", "\"yes\"", "must be \"true\" or \"false\"")]
    [InlineData("AUDIT", "\"true\"", "only for ALLOW and DENY policies, not AUDIT")]
    [InlineData("CUSTOM", "\"true\"", "only for ALLOW and DENY policies, not CUSTOM")]
    public void Parse_BadDryRunAnnotation_IsAnErrorAndThePolicyIsNotApplied(string action, string value, string message)
    {
        var provider = action == "CUSTOM" ? "provider: {name: x}\n" : "";
        var parsed = ConfigFileParser.Parse("authz.yaml", Policy($"action: {action}\n{provider}rules: [{{}}]", $"name: policy, annotations: {{istio.io/dry-run: {value}}}"));

        var error = Assert.Single(parsed.Diagnostics, d => d.Severity == DiagnosticSeverity.Error);
        Assert.Equal("metadata.annotations", error.Field);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.Empty(parsed.Resources);
    }

    [Fact]
    public void Parse_Custom_IsAWarningThatItFailsClosed()
    {
        var parsed = ConfigFileParser.Parse("authz.yaml", Policy("action: CUSTOM\nprovider: {name: opa}\nrules: [{}]"));

        var warning = Assert.Single(parsed.Diagnostics);
        Assert.Equal((DiagnosticSeverity.Warning, "spec.action"), (warning.Severity, warning.Field));
        Assert.Contains("CUSTOM needs an external authorizer, which Bowline does not have yet", warning.Message, StringComparison.Ordinal);
        Assert.Contains("DENIED", warning.Message, StringComparison.Ordinal);
        Assert.Single(parsed.Resources);
    }

    [Fact]
    public void Parse_EmptySelector_IsAWarningThatThePolicyIsNamespaceWide()
    {
        var parsed = ConfigFileParser.Parse("authz.yaml", Policy("selector: {}\nrules: [{}]"));

        var warning = Assert.Single(parsed.Diagnostics);
        Assert.Equal((DiagnosticSeverity.Warning, "spec.selector"), (warning.Severity, warning.Field));
        Assert.Contains("selects every workload of the namespace", warning.Message, StringComparison.Ordinal);
        Assert.Single(parsed.Resources);
    }

    [Fact]
    public void Parse_OneInvalidPolicy_IsRejectedAloneAndTheOthersLoad()
    {
        var parsed = ConfigFileParser.Parse("authz.yaml", Policy("rules: [{}]", "name: good") + "---\n" + Policy("action: DENY", "name: bad"));

        Assert.Equal("good", Assert.Single(parsed.Resources).Meta.Name);
        Assert.Equal("AuthorizationPolicy default/bad", Assert.Single(parsed.Diagnostics).Resource);
    }

    private sealed class ConditionComparer : IEqualityComparer<AuthorizationCondition>
    {
        public bool Equals(AuthorizationCondition? x, AuthorizationCondition? y) =>
            x is not null && y is not null && x.Key == y.Key && x.Values.SequenceEqual(y.Values) && x.NotValues.SequenceEqual(y.NotValues);

        public int GetHashCode(AuthorizationCondition obj) => obj.Key.GetHashCode(StringComparison.Ordinal);
    }
}
