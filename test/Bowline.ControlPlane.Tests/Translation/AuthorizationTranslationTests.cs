using Bowline.ControlPlane.Snapshots;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Listener.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using static Bowline.ControlPlane.Tests.Config.AuthorizationPoliciesTests;
using static Bowline.ControlPlane.Tests.Translation.MtlsExpectations;
using HttpRbac = Envoy.Extensions.Filters.Http.Rbac.V3.RBAC;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>
/// AuthorizationPolicy as Envoy RBAC HTTP filters, field for field what Istio's authz builder writes
/// (pilot/pkg/security/authz/builder), for Istio's "Authorization for HTTP traffic" and "JWT" tasks on bookinfo with
/// mesh mTLS in its default PERMISSIVE mode, plus the few places where Bowline deliberately writes more.
/// </summary>
public sealed class AuthorizationTranslationTests
{
    private static readonly ProxyNode Productpage = ProxyNode.From(TestNodes.ProductpageSidecar());
    private static readonly ProxyNode Details = ProxyNode.From(TestNodes.Sidecar("details", "v1", 9080));
    private static readonly ProxyNode Reviews = ProxyNode.From(TestNodes.Sidecar("reviews", "v1", 9080));
    private static readonly ProxyNode Ratings = ProxyNode.From(TestNodes.Sidecar("ratings", "v1", 9080));

    // Istio's task YAML (security/authorization/authz-http), as the task applies it.
    private const string AllowNothing = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: allow-nothing\n  namespace: default\nspec:\n  {}\n";

    private static string Viewer(string app, string? principal) => $"""
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata:
          name: "{app}-viewer"
          namespace: default
        spec:
          selector:
            matchLabels:
              app: {app}
          action: ALLOW
          rules:
          - {(principal is null ? "" : $"from:\n    - source:\n        principals: [\"{principal}\"]\n    ")}to:
            - operation:
                methods: ["GET"]
        """;

    private const string DryRunAllowPrefix = "\"shadowRulesStatPrefix\": \"istio_dry_run_allow_\"";

    private const string MatchNever = """{"permissions": [{"notRule": {"any": true}}], "principals": [{"notId": {"any": true}}]}""";

    private const string GetOnly = """{"andRules": {"rules": [{"orRules": {"rules": [{"header": {"name": ":method", "stringMatch": {"exact": "GET"}}}]}}]}}""";

    private static string FromPrincipal(string spiffe) => $$$$$"""{"andIds": {"ids": [{"orIds": {"ids": [{"authenticated": {"principalName": {"exact": "{{{{{spiffe}}}}}"}}}]}}]}}""";

    private static string JwtClaim(string claim, string exact) =>
        $$$$$"""{"metadata": {"filter": "envoy.filters.http.jwt_authn", "path": [{"key": "payload"}, {"key": "{{{{{claim}}}}}"}], "value": {"stringMatch": {"exact": "{{{{{exact}}}}}"}}}}""";

    private static XdsSnapshot Translate(ProxyNode node, params string[] yaml) => MeshTranslator.Translate(Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries, yaml), node);

    /// <summary>The HTTP filters of a listener, the same on every chain (PERMISSIVE has a TLS and a plaintext chain).</summary>
    private static IReadOnlyList<HttpFilter> Filters(XdsSnapshot snapshot, string listener = "virtualInbound")
    {
        var chains = Resource<Listener>(snapshot, TypeUrls.Listener, listener).FilterChains;
        var filters = chains.Select(c => c.Filters.Single().TypedConfig.Unpack<HttpConnectionManager>().HttpFilters.ToList()).ToList();
        Assert.All(filters, f => Assert.Equal(filters[0], f));
        return filters[0];
    }

    private static List<HttpRbac> Rbac(XdsSnapshot snapshot, string listener = "virtualInbound") =>
        Filters(snapshot, listener).Where(f => f.Name == "envoy.filters.http.rbac").Select(f => f.TypedConfig.Unpack<HttpRbac>()).ToList();

    [Fact]
    public void Translate_NoPolicy_NoRbacFilter()
    {
        Assert.Equal(["istio.metadata_exchange", "envoy.filters.http.fault", "envoy.filters.http.cors", "envoy.filters.http.local_ratelimit", "istio.stats", "envoy.filters.http.router"], Filters(Translate(Productpage)).Select(f => f.Name));
    }

    [Fact]
    public void Translate_AllowNothing_AnAllowFilterWhosePolicyNeverMatches()
    {
        var snapshot = Translate(Productpage, AllowNothing);

        Assert.Equal(["istio.metadata_exchange", "envoy.filters.http.rbac", "envoy.filters.http.fault", "envoy.filters.http.cors", "envoy.filters.http.local_ratelimit", "istio.stats", "envoy.filters.http.router"], Filters(snapshot).Select(f => f.Name));
        Assert.Equal(Json<HttpRbac>("{\"rules\": {\"policies\": {\"ns[default]-policy[allow-nothing]-rule[0]\": " + MatchNever + "}}, " + DryRunAllowPrefix + "}"), Assert.Single(Rbac(snapshot)));
        // Every workload of the namespace is covered; a workload of another namespace is not.
        Assert.Single(Rbac(Translate(Reviews, AllowNothing)));
        Assert.Empty(Rbac(Translate(Reviews, AllowNothing.Replace("namespace: default", "namespace: other", StringComparison.Ordinal))));
    }

    [Fact]
    public void Translate_ProductpageViewer_GetFromAnyone()
    {
        var snapshot = Translate(Productpage, AllowNothing, Viewer("productpage", null));

        Assert.Equal(Json<HttpRbac>($$$$$"""
            {
              "rules": {
                "policies": {
                  "ns[default]-policy[allow-nothing]-rule[0]": {{{{{MatchNever}}}}},
                  "ns[default]-policy[productpage-viewer]-rule[0]": {"permissions": [{{{{{GetOnly}}}}}], "principals": [{"andIds": {"ids": [{"any": true}]}}]}
                }
              },
              {{{{{DryRunAllowPrefix}}}}}
            }
            """), Assert.Single(Rbac(snapshot)));
        // The viewer selects productpage only: details still allows nothing.
        Assert.Equal(["ns[default]-policy[allow-nothing]-rule[0]"], Assert.Single(Rbac(Translate(Details, AllowNothing, Viewer("productpage", null)))).Rules.Policies.Keys);
    }

    [Theory]
    [InlineData("details", "cluster.local/ns/default/sa/bookinfo-productpage")]
    [InlineData("reviews", "cluster.local/ns/default/sa/bookinfo-productpage")]
    [InlineData("ratings", "cluster.local/ns/default/sa/bookinfo-reviews")]
    public void Translate_Viewers_GetFromTheCallersSpiffeId(string app, string principal)
    {
        var node = app switch { "details" => Details, "reviews" => Reviews, _ => Ratings };

        var rbac = Assert.Single(Rbac(Translate(node, AllowNothing, Viewer(app, principal))));

        Assert.Equal(Json<HttpRbac>($$$$$"""
            {
              "rules": {
                "policies": {
                  "ns[default]-policy[allow-nothing]-rule[0]": {{{{{MatchNever}}}}},
                  "ns[default]-policy[{{{{{app}}}}}-viewer]-rule[0]": {"permissions": [{{{{{GetOnly}}}}}], "principals": [{{{{{FromPrincipal("spiffe://" + principal)}}}}}]}
                }
              },
              {{{{{DryRunAllowPrefix}}}}}
            }
            """), rbac);
    }

    [Fact]
    public void Translate_PrincipalInClusterLocal_IsTheMeshTrustDomain()
    {
        var index = Bookinfo.Build(Bookinfo.SidecarWorkloadEntries, new Bowline.ControlPlane.Config.MeshSecurity(true, "example.org"), Viewer("details", "cluster.local/ns/default/sa/bookinfo-productpage"), Viewer("reviews", "other.org/ns/default/sa/x"));

        Assert.Equal(Json<Envoy.Config.Rbac.V3.Principal>(FromPrincipal("spiffe://example.org/ns/default/sa/bookinfo-productpage")), Assert.Single(Rbac(MeshTranslator.Translate(index, Details))).Rules.Policies.Values.Single().Principals.Single());
        Assert.Equal(Json<Envoy.Config.Rbac.V3.Principal>(FromPrincipal("spiffe://other.org/ns/default/sa/x")), Assert.Single(Rbac(MeshTranslator.Translate(index, Reviews))).Rules.Policies.Values.Single().Principals.Single());
    }

    [Fact]
    public void Translate_RequireJwtAtTheIngressGateway_IssuerAndSubjectFromJwtAuthnMetadata()
    {
        // Istio's JWT task (security/authentication/authn-policy), with the claim condition of its second step.
        const string RequireJwt = """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: require-jwt
              namespace: istio-system
            spec:
              selector:
                matchLabels:
                  istio: ingressgateway
              action: ALLOW
              rules:
              - from:
                - source:
                   requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]
                when:
                - key: request.auth.claims[groups]
                  values: ["group1"]
            """;

        var snapshot = MeshTranslator.Translate(Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries, RequireJwt), ProxyNode.From(TestNodes.IngressGateway()));

        Assert.Equal(Json<HttpRbac>($$$$$"""
            {
              "rules": {
                "policies": {
                  "ns[istio-system]-policy[require-jwt]-rule[0]": {
                    "permissions": [{"andRules": {"rules": [{"any": true}]}}],
                    "principals": [{"andIds": {"ids": [
                      {"andIds": {"ids": [{{{{{JwtClaim("iss", "testing@secure.istio.io")}}}}}, {{{{{JwtClaim("sub", "testing@secure.istio.io")}}}}}]}},
                      {"metadata": {"filter": "envoy.filters.http.jwt_authn", "path": [{"key": "payload"}, {"key": "groups"}],
                                    "value": {"orMatch": {"valueMatchers": [{"listMatch": {"oneOf": {"stringMatch": {"exact": "group1"}}}}, {"stringMatch": {"exact": "group1"}}]}}}}
                    ]}}]
                  }
                }
              },
              {{{{{DryRunAllowPrefix}}}}}
            }
            """), Assert.Single(Rbac(snapshot, "0.0.0.0_8080")));
        // A sidecar of the mesh is not selected.
        Assert.Empty(Rbac(MeshTranslator.Translate(Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries, RequireJwt), Reviews)));
    }

    [Fact]
    public void Translate_NegatedIdentityInAllow_NeverMatchesPlaintext()
    {
        var snapshot = Translate(Reviews, Policy("default", "not-ratings", "{selector: {matchLabels: {app: reviews}}, rules: [{from: [{source: {notPrincipals: ['cluster.local/ns/default/sa/bookinfo-ratings'], notNamespaces: [test]}}]}]}"));

        // Istio writes only the not_id, which a plaintext request (no identity) matches under PERMISSIVE; Bowline
        // requires an identity first, so plaintext is not admitted by a rule that is about who the peer is.
        var anyIdentity = """{"authenticated": {"principalName": {"safeRegex": {"regex": ".+"}}}}""";
        Assert.Equal(Json<Envoy.Config.Rbac.V3.Principal>($$$$$"""
            {"andIds": {"ids": [
              {{{{{anyIdentity}}}}},
              {"notId": {"orIds": {"ids": [{"authenticated": {"principalName": {"exact": "spiffe://cluster.local/ns/default/sa/bookinfo-ratings"}}}]}}},
              {{{{{anyIdentity}}}}},
              {"notId": {"orIds": {"ids": [{"authenticated": {"principalName": {"safeRegex": {"regex": ".*/ns/test/.*"}}}}]}}}
            ]}}
            """), Assert.Single(Rbac(snapshot)).Rules.Policies["ns[default]-policy[not-ratings]-rule[0]"].Principals.Single());
    }

    [Fact]
    public void Translate_NegatedIdentityInDeny_KeepsIstiosFormSoPlaintextIsDenied()
    {
        var snapshot = Translate(Reviews, Policy("default", "deny-others", "{action: DENY, rules: [{from: [{source: {notNamespaces: [default]}}], when: [{key: source.principal, notValues: ['*']}]}]}"));

        var rbac = Assert.Single(Rbac(snapshot));
        Assert.Equal(Envoy.Config.Rbac.V3.RBAC.Types.Action.Deny, rbac.Rules.Action);
        Assert.Equal(Json<Envoy.Config.Rbac.V3.Principal>("""
            {"andIds": {"ids": [
              {"notId": {"orIds": {"ids": [{"authenticated": {"principalName": {"safeRegex": {"regex": ".*/ns/default/.*"}}}}]}}},
              {"notId": {"orIds": {"ids": [{"authenticated": {"principalName": {"safeRegex": {"regex": ".+"}}}}]}}}
            ]}}
            """), rbac.Rules.Policies.Values.Single().Principals.Single());
    }

    [Fact]
    public void Translate_EveryAction_InIstiosOrderAfterJwtAndBeforeTheRest()
    {
        var snapshot = Translate(Reviews,
            Policy("default", "allow", "{rules: [{}]}"),
            Policy("default", "deny", "{action: DENY, rules: [{to: [{operation: {paths: ['/admin*']}}]}]}"),
            Policy("default", "audit", "{action: AUDIT, rules: [{to: [{operation: {methods: [DELETE]}}]}]}"),
            Policy("default", "ext", "{action: CUSTOM, provider: {name: opa}, rules: [{to: [{operation: {paths: ['/private/*']}}]}]}"));

        var rbac = Rbac(snapshot);
        Assert.Equal(
            ["istio-ext-authz-opa-ns[default]-policy[ext]-rule[0]-deny-due-to-bad-CUSTOM-action", "ns[default]-policy[audit]-rule[0]", "ns[default]-policy[deny]-rule[0]", "ns[default]-policy[allow]-rule[0]"],
            rbac.Select(r => r.Rules.Policies.Keys.Single()));
        Assert.Equal(["Deny", "Log", "Deny", "Allow"], rbac.Select(r => r.Rules.Action.ToString()));
        // Istio derives the prefix from the (absent) shadow rules, so even AUDIT carries ALLOW's; only its CUSTOM stand-in has none.
        Assert.Equal(["", "istio_dry_run_allow_", "istio_dry_run_allow_", "istio_dry_run_allow_"], rbac.Select(r => r.ShadowRulesStatPrefix));
        Assert.Equal(Json<Envoy.Config.Rbac.V3.Permission>("""{"andRules": {"rules": [{"orRules": {"rules": [{"urlPath": {"path": {"prefix": "/private/"}}}]}}]}}"""), rbac[0].Rules.Policies.Values.Single().Permissions.Single());
        Assert.Contains(snapshot.Warnings, w => w.Contains("AuthorizationPolicy default/ext", StringComparison.Ordinal) && w.Contains("DENIED (fail closed", StringComparison.Ordinal));

        // With the JWT filter (RequestAuthentication's) in place, the RBAC filters go right after it.
        var hcm = EnvoyBuilders.Hcm("test", new Bowline.ControlPlane.Registry.ServiceIndex(Bowline.ControlPlane.Config.MeshConfig.Empty), ProxyNode.From(TestNodes.ProductpageSidecar()), Bowline.ControlPlane.Config.TelemetryMode.Server, new SnapshotBuilder());
        hcm.HttpFilters.Insert(1, new HttpFilter { Name = "envoy.filters.http.jwt_authn" });
        var builder = AuthorizationBuilder.For(Reviews, Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries, Policy("default", "allow", "{rules: [{}]}")), new SnapshotBuilder(), new Dictionary<int, int> { [9080] = 15380 });
        builder.InsertInto(hcm);
        Assert.Equal(["istio.metadata_exchange", "envoy.filters.http.jwt_authn", "envoy.filters.http.rbac", "envoy.filters.http.fault", "envoy.filters.http.cors", "envoy.filters.http.local_ratelimit", "istio.stats", "envoy.filters.http.router"], hcm.HttpFilters.Select(f => f.Name));
    }

    [Fact]
    public void Translate_DryRun_ShadowRulesOnly()
    {
        var snapshot = Translate(Reviews, "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: try-deny, namespace: default, annotations: {istio.io/dry-run: \"true\"}}\nspec: {action: DENY, rules: [{}]}\n");

        Assert.Equal(Json<HttpRbac>("""
            {
              "shadowRules": {"action": "DENY", "policies": {"ns[default]-policy[try-deny]-rule[0]": {"permissions": [{"andRules": {"rules": [{"any": true}]}}], "principals": [{"andIds": {"ids": [{"any": true}]}}]}}},
              "shadowRulesStatPrefix": "istio_dry_run_deny_"
            }
            """), Assert.Single(Rbac(snapshot)));
    }

    [Fact]
    public void Translate_Ports_AreTheWorkloadsPortsWhereverTheSidecarAcceptsThem()
    {
        var snapshot = Translate(Reviews, Policy("default", "ports", "{rules: [{to: [{operation: {ports: ['9080', '9090']}}]}]}"));

        // Explicit mode: reviews' 9080 arrives on the sidecar's 15380; 9090 is no port of reviews, so it cannot match.
        Assert.Equal(Json<Envoy.Config.Rbac.V3.Permission>("""{"andRules": {"rules": [{"orRules": {"rules": [{"destinationPort": 15380}, {"notRule": {"any": true}}]}}]}}"""),
            Assert.Single(Rbac(snapshot)).Rules.Policies.Values.Single().Permissions.Single());
        Assert.Contains(snapshot.Warnings, w => w.Contains("port 9090 is not a port of workload reviews-v1.default (9080)", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_MeshMtlsOff_IdentityRulesAreAWarning()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(Viewer("details", "cluster.local/ns/default/sa/bookinfo-productpage")), Details);

        Assert.Single(Rbac(snapshot));
        var warning = Assert.Single(snapshot.Warnings, w => w.Contains("AuthorizationPolicy default/details-viewer", StringComparison.Ordinal));
        Assert.Contains("principals match the peer's mTLS identity, but mesh mTLS is off", warning, StringComparison.Ordinal);
        Assert.Contains("admit nothing", warning, StringComparison.Ordinal);
    }
}
