using System.Net;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Filters.Common.Rbac;
using Bowline.Proxy.Filters.Http;
using Bowline.Proxy.Filters.Http.Rbac;
using Bowline.Proxy.Http;
using Bowline.Proxy.Listeners;
using Bowline.Proxy.Stats;
using Bowline.Proxy.Tests.Infrastructure;
using Bowline.Proxy.Tls;
using Envoy.Config.Rbac.V3;
using Envoy.Config.Route.V3;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using FilterProto = Envoy.Extensions.Filters.Http.Rbac.V3.RBAC;
using Matchers = Envoy.Type.Matcher.V3;

namespace Bowline.Proxy.Tests.Filters;

/// <summary>
/// Envoy's RBAC filter as Istio programs it: ALLOW and DENY rule sets over the verified peer, the request and the JWT
/// payload in dynamic metadata; shadow rules; per-route overrides; and the config a proxy must refuse.
/// </summary>
public sealed class RbacFilterTests
{
    private static readonly System.Security.Cryptography.X509Certificates.X509Certificate2 Root = TestPki.Root();
    private readonly FakeTimeProvider _time = new();
    private readonly ProxyStats _stats = new();

    private IHttpFilter Create(FilterProto rbac) =>
        new RbacFilterFactory().Create("envoy.filters.http.rbac", Any.Pack(rbac), new FilterFactoryContext(_stats, _time, new Random(1), NullLoggerFactory.Instance, "inbound_0.0.0.0_9080"), "listener l http filter rbac");

    private static FilterProto Rules(RBAC.Types.Action action, params (string Name, Policy Policy)[] policies)
    {
        var rules = new RBAC { Action = action };
        foreach (var (name, policy) in policies)
        {
            rules.Policies[name] = policy;
        }
        return new FilterProto { Rules = rules };
    }

    private static Policy Policy(Permission permission, Principal principal) => new() { Permissions = { permission }, Principals = { principal } };

    private static Permission AnyPermission => new() { Any = true };

    private static Principal AnyPrincipal => new() { Any = true };

    private static Principal PrincipalName(string exact) => new() { Authenticated = new Principal.Types.Authenticated { PrincipalName = new Matchers.StringMatcher { Exact = exact } } };

    private static Permission Method(string method) => new() { Header = new HeaderMatcher { Name = ":method", StringMatch = new Matchers.StringMatcher { Exact = method } } };

    private static Permission PathPrefix(string prefix) => new() { UrlPath = new Matchers.PathMatcher { Path = new Matchers.StringMatcher { Prefix = prefix } } };

    /// <summary>A request on a connection whose peer proved <paramref name="peerUri"/> (null: plaintext).</summary>
    private HttpStream Request(string? peerUri = null, Action<HttpRequest>? request = null, IPAddress? source = null, int port = 15006, string? sni = null)
    {
        var stream = Streams.Create(_time, _stats, request);
        PeerIdentity? peer = null;
        if (peerUri is not null)
        {
            var certificate = TestPki.Leaf(Root, [peerUri]);
            SpiffeId.TryParse(peerUri, out var spiffe);
            peer = new PeerIdentity(certificate, spiffe);
        }
        var metadata = new ConnectionMetadata(IPAddress.Parse("10.0.0.5"), port, source ?? IPAddress.Parse("10.0.0.9"), 40000,
            peer is null ? ConnectionMetadata.RawBuffer : ConnectionMetadata.Tls, sni, []);
        stream.Context.Features.Set(new ConnectionChain(null!, new CompiledFilterChain("c", stream.Chain, null), metadata, peer));
        return stream;
    }

    [Fact]
    public async Task Allow_ThePolicysPrincipalGetsIn_AnyoneElseIs403RbacAccessDenied()
    {
        var filter = Create(Rules(RBAC.Types.Action.Allow, ("ns[default]-policy[details-viewer]-rule[0]", Policy(Method("GET"), PrincipalName(TestPki.Spiffe("bookinfo-productpage"))))));

        var productpage = Request(TestPki.Spiffe("bookinfo-productpage"));
        var ratings = Request(TestPki.Spiffe("bookinfo-ratings"));

        Assert.Equal(FilterStatus.Continue, await filter.OnRequestAsync(productpage));
        Assert.Equal(FilterStatus.Stop, await filter.OnRequestAsync(ratings));
        Assert.Equal(403, ratings.Context.Response.StatusCode);
        Assert.Equal("RBAC: access denied", Streams.Body(ratings));
        Assert.Equal("rbac_access_denied_matched_policy[none]", ratings.Info.ResponseCodeDetails);
        Assert.Equal(1, _stats.ValueOf("http.inbound_0.0.0.0_9080.rbac.allowed"));
        Assert.Equal(1, _stats.ValueOf("http.inbound_0.0.0.0_9080.rbac.denied"));
    }

    [Fact]
    public async Task AllowWithNoPolicies_DeniesEverything_IstiosAllowNothing()
    {
        var filter = Create(Rules(RBAC.Types.Action.Allow));

        Assert.Equal(FilterStatus.Stop, await filter.OnRequestAsync(Request(TestPki.Spiffe("sleep"))));
    }

    [Fact]
    public async Task Deny_TheMatchingPolicyIsNamedInTheDetails_OthersPass()
    {
        var filter = Create(Rules(RBAC.Types.Action.Deny,
            ("ns[foo]-policy[deny-post]-rule[0]", Policy(Method("POST"), AnyPrincipal)),
            ("ns[foo]-policy[deny-admin]-rule[0]", Policy(PathPrefix("/admin"), AnyPrincipal))));

        var post = Request(request: r => r.Method = "POST");
        var admin = Request(request: r => r.Path = "/admin/users");
        var get = Request();

        await filter.OnRequestAsync(post);
        await filter.OnRequestAsync(admin);
        Assert.Equal(FilterStatus.Continue, await filter.OnRequestAsync(get));
        Assert.Equal("rbac_access_denied_matched_policy[ns[foo]-policy[deny-post]-rule[0]]", post.Info.ResponseCodeDetails);
        Assert.Equal("rbac_access_denied_matched_policy[ns[foo]-policy[deny-admin]-rule[0]]", admin.Info.ResponseCodeDetails);
    }

    [Fact]
    public async Task Authenticated_NeverMatchesPlaintext_SoNegatingItCannotAdmitAPlaintextCallerUnlessTheRuleSaysSo()
    {
        // authenticated with no name: any verified peer.
        var anyPeer = Create(Rules(RBAC.Types.Action.Allow, ("mtls", Policy(AnyPermission, new Principal { Authenticated = new Principal.Types.Authenticated() }))));

        Assert.Equal(FilterStatus.Continue, await anyPeer.OnRequestAsync(Request(TestPki.Spiffe("sleep"))));
        Assert.Equal(FilterStatus.Stop, await anyPeer.OnRequestAsync(Request()));
    }

    [Fact]
    public async Task PrincipalName_MatchesTheUriSan_ThenDnsSans()
    {
        var filter = Create(Rules(RBAC.Types.Action.Allow, ("ns", Policy(AnyPermission, new Principal
        {
            Authenticated = new Principal.Types.Authenticated { PrincipalName = new Matchers.StringMatcher { SafeRegex = new Matchers.RegexMatcher { Regex = ".*/ns/foo/.*" } } },
        }))));

        Assert.Equal(FilterStatus.Continue, await filter.OnRequestAsync(Request(TestPki.Spiffe("sleep", "foo"))));
        Assert.Equal(FilterStatus.Stop, await filter.OnRequestAsync(Request(TestPki.Spiffe("sleep", "bar"))));
    }

    [Fact]
    public async Task AndOrNot_ComposeAsEnvoyDocuments()
    {
        // GET anywhere but /admin, from 10.0.0.0/8.
        var permission = new Permission
        {
            AndRules = new Permission.Types.Set { Rules = { Method("GET"), new Permission { NotRule = PathPrefix("/admin") } } },
        };
        var principal = new Principal { OrIds = new Principal.Types.Set { Ids = { new Principal { DirectRemoteIp = new Envoy.Config.Core.V3.CidrRange { AddressPrefix = "10.0.0.0", PrefixLen = 8 } } } } };
        var filter = Create(Rules(RBAC.Types.Action.Allow, ("p", Policy(permission, principal))));

        Assert.Equal(FilterStatus.Continue, await filter.OnRequestAsync(Request()));
        Assert.Equal(FilterStatus.Stop, await filter.OnRequestAsync(Request(request: r => r.Path = "/admin")));
        Assert.Equal(FilterStatus.Stop, await filter.OnRequestAsync(Request(request: r => r.Method = "DELETE")));
        Assert.Equal(FilterStatus.Stop, await filter.OnRequestAsync(Request(source: IPAddress.Parse("192.168.1.1"))));
        // An IPv4 peer on a dual-stack socket is still 10.x.
        Assert.Equal(FilterStatus.Continue, await filter.OnRequestAsync(Request(source: IPAddress.Parse("10.1.2.3").MapToIPv6())));
    }

    [Fact]
    public async Task AnIpv6Range_HoldsAnIpv4PeerInItsMappedForm_AsFilterChainMatchesDo()
    {
        // ::ffff:0:0/95 is wider than the mapped range, so it stays an IPv6 range (CidrRange); the peer matches as it came.
        var filter = Create(Rules(RBAC.Types.Action.Allow, ("p", Policy(AnyPermission,
            new Principal { DirectRemoteIp = new Envoy.Config.Core.V3.CidrRange { AddressPrefix = "::ffff:0:0", PrefixLen = 95 } }))));

        Assert.Equal(FilterStatus.Continue, await filter.OnRequestAsync(Request(source: IPAddress.Parse("10.1.2.3").MapToIPv6())));
        Assert.Equal(FilterStatus.Stop, await filter.OnRequestAsync(Request(source: IPAddress.Parse("2001:db8::1"))));
    }

    [Fact]
    public async Task RemoteIp_IsTheLastForwardedForAddress_DirectRemoteIpTheConnectionPeer()
    {
        var filter = Create(Rules(RBAC.Types.Action.Allow, ("p", Policy(AnyPermission, new Principal { RemoteIp = new Envoy.Config.Core.V3.CidrRange { AddressPrefix = "203.0.113.7", PrefixLen = 32 } }))));

        Assert.Equal(FilterStatus.Continue, await filter.OnRequestAsync(Request(request: r => r.Headers["x-forwarded-for"] = "198.51.100.1, 203.0.113.7")));
        Assert.Equal(FilterStatus.Stop, await filter.OnRequestAsync(Request(request: r => r.Headers["x-forwarded-for"] = "203.0.113.7, 198.51.100.1")));
        Assert.Equal(FilterStatus.Stop, await filter.OnRequestAsync(Request()));
    }

    [Fact]
    public async Task DestinationPortAndServerName_ComeFromTheConnection()
    {
        var filter = Create(Rules(RBAC.Types.Action.Allow, ("p", Policy(
            new Permission { AndRules = new Permission.Types.Set { Rules = { new Permission { DestinationPort = 9080 }, new Permission { RequestedServerName = new Matchers.StringMatcher { Suffix = ".local" } } } } },
            AnyPrincipal))));

        Assert.Equal(FilterStatus.Continue, await filter.OnRequestAsync(Request(port: 9080, sni: "reviews.default.svc.cluster.local")));
        Assert.Equal(FilterStatus.Stop, await filter.OnRequestAsync(Request(port: 9081, sni: "reviews.default.svc.cluster.local")));
        Assert.Equal(FilterStatus.Stop, await filter.OnRequestAsync(Request(port: 9080)));
    }

    [Fact]
    public async Task Header_DuplicateValuesAreMatchedJoinedByCommas()
    {
        var filter = Create(Rules(RBAC.Types.Action.Deny, ("p", Policy(AnyPermission,
            new Principal { Header = new HeaderMatcher { Name = "x-role", StringMatch = new Matchers.StringMatcher { Exact = "user,admin" } } }))));

        var twoHeaders = Request(request: r => r.Headers["x-role"] = new Microsoft.Extensions.Primitives.StringValues(["user", "admin"]));
        var one = Request(request: r => r.Headers["x-role"] = "admin");

        Assert.Equal(FilterStatus.Stop, await filter.OnRequestAsync(twoHeaders));
        Assert.Equal(FilterStatus.Continue, await filter.OnRequestAsync(one));
    }

    [Fact]
    public async Task JwtClaims_AreMatchedInTheJwtFiltersMetadata_AsIstioTranslatesRequestPrincipalsAndClaims()
    {
        static Matchers.MetadataMatcher Claim(Matchers.ValueMatcher value, params string[] path)
        {
            var matcher = new Matchers.MetadataMatcher { Filter = "envoy.filters.http.jwt_authn", Value = value };
            foreach (var key in path)
            {
                matcher.Path.Add(new Matchers.MetadataMatcher.Types.PathSegment { Key = key });
            }
            return matcher;
        }
        static Matchers.ValueMatcher Text(string exact) => new() { StringMatch = new Matchers.StringMatcher { Exact = exact } };
        // requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"] and claims[groups] contains group1.
        var principal = new Principal
        {
            AndIds = new Principal.Types.Set
            {
                Ids =
                {
                    new Principal { Metadata = Claim(Text("testing@secure.istio.io"), "payload", "iss") },
                    new Principal { Metadata = Claim(Text("testing@secure.istio.io"), "payload", "sub") },
                    new Principal { Metadata = Claim(new Matchers.ValueMatcher { ListMatch = new Matchers.ListMatcher { OneOf = Text("group1") } }, "payload", "groups") },
                },
            },
        };
        var filter = Create(Rules(RBAC.Types.Action.Allow, ("require-jwt", Policy(AnyPermission, principal))));
        HttpStream WithToken(params string[] groups)
        {
            var stream = Request();
            var payload = new Struct();
            payload.Fields["iss"] = Value.ForString("testing@secure.istio.io");
            payload.Fields["sub"] = Value.ForString("testing@secure.istio.io");
            payload.Fields["groups"] = Value.ForList([.. groups.Select(Value.ForString)]);
            stream.WritableMetadata.Set("envoy.filters.http.jwt_authn", "payload", Value.ForStruct(payload));
            return stream;
        }

        Assert.Equal(FilterStatus.Continue, await filter.OnRequestAsync(WithToken("group1", "group2")));
        Assert.Equal(FilterStatus.Stop, await filter.OnRequestAsync(WithToken("group2")));
        Assert.Equal(FilterStatus.Stop, await filter.OnRequestAsync(Request()));
    }

    [Fact]
    public async Task ShadowRules_AreCountedAndRecorded_NeverEnforced()
    {
        var rbac = new FilterProto { ShadowRules = new RBAC { Action = RBAC.Types.Action.Deny }, ShadowRulesStatPrefix = "istio_dry_run_allow_" };
        rbac.ShadowRules.Policies["ns[default]-policy[dry]-rule[0]"] = Policy(AnyPermission, AnyPrincipal);
        var filter = Create(rbac);
        var stream = Request();

        Assert.Equal(FilterStatus.Continue, await filter.OnRequestAsync(stream));
        Assert.Equal(1, _stats.ValueOf("http.inbound_0.0.0.0_9080.rbac.istio_dry_run_allow_shadow_denied"));
        Assert.Equal("denied", stream.Metadata!.Get(RbacFilter.MetadataNamespace, ["istio_dry_run_allow_shadow_engine_result"])!.StringValue);
        Assert.Equal("ns[default]-policy[dry]-rule[0]", stream.Metadata.Get(RbacFilter.MetadataNamespace, ["istio_dry_run_allow_shadow_effective_policy_id"])!.StringValue);
    }

    [Fact]
    public async Task LogAction_LetsEverythingThrough_MarksMatchesForTheAccessLog()
    {
        var filter = Create(Rules(RBAC.Types.Action.Log, ("audit", Policy(Method("DELETE"), AnyPrincipal))));
        var delete = Request(request: r => r.Method = "DELETE");

        Assert.Equal(FilterStatus.Continue, await filter.OnRequestAsync(delete));
        Assert.True(delete.Metadata!.Get("envoy.common", ["access_log_hint"])!.BoolValue);
    }

    [Fact]
    public void PerRoute_WithoutRbac_TurnsTheFilterOff_WithRbacReplacesIt()
    {
        var factory = new RbacFilterFactory();

        Assert.Same(RbacRules.Off, factory.CompilePerRoute(Any.Pack(new Envoy.Extensions.Filters.Http.Rbac.V3.RBACPerRoute()), "route r"));
        var replaced = (RbacRules)factory.CompilePerRoute(Any.Pack(new Envoy.Extensions.Filters.Http.Rbac.V3.RBACPerRoute { Rbac = Rules(RBAC.Types.Action.Allow) }), "route r");
        Assert.Equal(RbacAction.Allow, replaced.Rules!.Action);
    }

    [Theory]
    [InlineData("condition")]
    [InlineData("uri_template")]
    [InlineData("matcher")]
    [InlineData("empty_principals")]
    [InlineData("bad_cidr")]
    public void UnsupportedOrInvalidConfig_IsANackNamingThePolicyAndField(string what)
    {
        var policy = Policy(AnyPermission, AnyPrincipal);
        var rbac = Rules(RBAC.Types.Action.Allow, ("ns[default]-policy[p]-rule[0]", policy));
        switch (what)
        {
            case "condition":
                policy.Condition = new Google.Api.Expr.V1Alpha1.Expr();
                break;
            case "uri_template":
                policy.Permissions[0] = new Permission { UriTemplate = new Envoy.Config.Core.V3.TypedExtensionConfig { Name = "t", TypedConfig = Any.Pack(new Empty()) } };
                break;
            case "matcher":
                rbac.Matcher = new global::Xds.Type.Matcher.V3.Matcher();
                break;
            case "empty_principals":
                policy.Principals.Clear();
                break;
            case "bad_cidr":
                policy.Principals[0] = new Principal { DirectRemoteIp = new Envoy.Config.Core.V3.CidrRange { AddressPrefix = "10.0.0", PrefixLen = 8 } };
                break;
        }

        var error = Assert.Throws<ProxyConfigException>(() => Create(rbac));

        Assert.Contains(what == "matcher" ? "matcher" : "ns[default]-policy[p]-rule[0]", error.Message);
    }
}
