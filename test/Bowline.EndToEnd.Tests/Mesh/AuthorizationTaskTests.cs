using System.Net;
using System.Text.Json;
using Bowline.EndToEnd.Tests.Infrastructure;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Microsoft.AspNetCore.Http;
using HttpRbac = Envoy.Extensions.Filters.Http.Rbac.V3.RBAC;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>
/// Istio's "Authorization on HTTP traffic" task (istio.io/latest/docs/tasks/security/authorization/authz-http) replayed
/// on a bookinfo-shaped mesh under a mesh-wide STRICT PeerAuthentication, with the task's own policies applied live one
/// step at a time, and the outcomes the task publishes at each step. The four services are
/// <see cref="TestBackend"/>s with bookinfo's labels and service accounts (<c>bookinfo-productpage</c>, ...), each
/// behind its sidecar; productpage calls details and reviews, and reviews calls ratings, through their own sidecars,
/// so every hop is mTLS with the caller's real identity. A client in the mesh (<c>sleep</c>) stands in for the
/// browser. Then two checks of the security model end to end: a DENY with <c>notPrincipals</c> keeps plaintext and
/// other identities out, and path normalization keeps <c>/public/../admin</c>-style paths from slipping past a DENY.
/// </summary>
public sealed class AuthorizationTaskTests
{
    private const string InboundStats = "http.inbound_0.0.0.0_9080.rbac";
    private const string Productpage = "http://productpage:9080/productpage";

    private const string MeshWideStrict = """
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata:
          name: default
          namespace: istio-system
        spec:
          mtls:
            mode: STRICT
        """;

    /// <summary>The task's first step: deny everything in the namespace.</summary>
    private const string AllowNothing = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata:
          name: allow-nothing
          namespace: default
        spec:
          {}
        """;

    private const string ProductpageViewer = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata:
          name: "productpage-viewer"
          namespace: default
        spec:
          selector:
            matchLabels:
              app: productpage
          action: ALLOW
          rules:
          - to:
            - operation:
                methods: ["GET"]
        """;

    /// <summary>The task applies details-viewer and reviews-viewer in one step; here as one file of two documents.</summary>
    private const string DetailsAndReviewsViewers = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata:
          name: "details-viewer"
          namespace: default
        spec:
          selector:
            matchLabels:
              app: details
          action: ALLOW
          rules:
          - from:
            - source:
                principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]
            to:
            - operation:
                methods: ["GET"]
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata:
          name: "reviews-viewer"
          namespace: default
        spec:
          selector:
            matchLabels:
              app: reviews
          action: ALLOW
          rules:
          - from:
            - source:
                principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]
            to:
            - operation:
                methods: ["GET"]
        """;

    private const string RatingsViewer = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata:
          name: "ratings-viewer"
          namespace: default
        spec:
          selector:
            matchLabels:
              app: ratings
          action: ALLOW
          rules:
          - from:
            - source:
                principals: ["cluster.local/ns/default/sa/bookinfo-reviews"]
            to:
            - operation:
                methods: ["GET"]
        """;

    private static readonly string[] Services = ["productpage", "details", "reviews", "ratings"];

    private sealed class Bookinfo(MeshHarness harness, Sidecar sleep, Dictionary<string, (TestBackend App, Sidecar Sidecar, HttpClient Outbound)> services) : IAsyncDisposable
    {
        public MeshHarness Harness => harness;

        /// <summary>The mesh client standing in for the task's browser: identity <c>sleep</c>.</summary>
        public HttpClient Browser { get; } = sleep.Client();

        public TestBackend App(string service) => services[service].App;

        public Sidecar Sidecar(string service) => services[service].Sidecar;

        /// <summary>An HttpClient behind <paramref name="service"/>'s sidecar: calls made with that workload's identity.</summary>
        public HttpClient From(string service) => services[service].Outbound;

        /// <summary>The service's own sidecar's RBAC counter (<c>allowed</c> or <c>denied</c>): the inbound HCM's, where authorization runs.</summary>
        public long Rbac(string service, string outcome) => services[service].Sidecar.Host.Stats.ValueOf($"{InboundStats}.{outcome}");

        public Dictionary<string, long> Denied() => Services.ToDictionary(s => s, s => Rbac(s, "denied"));

        public async ValueTask DisposeAsync()
        {
            Browser.Dispose();
            foreach (var (_, _, outbound) in services.Values)
            {
                outbound.Dispose();
            }
            await harness.DisposeAsync();
            foreach (var (app, _, _) in services.Values)
            {
                await app.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// Bookinfo under mesh-wide STRICT: details, ratings, reviews (v1-shaped, but calling ratings as v2 and v3 do) and
    /// productpage, each a backend behind its sidecar with bookinfo's service account, and the sleep client.
    /// </summary>
    private static async Task<Bookinfo> StartBookinfoAsync()
    {
        var apps = new Dictionary<string, TestBackend>();
        foreach (var service in Services)
        {
            apps[service] = await TestBackend.StartAsync(service);
        }
        var harness = await MeshHarness.StartMtlsAsync([.. Services.Select(s => ($"{s}.yaml", MeshYaml.Service(s, 9080))), ("peer-authentication.yaml", MeshWideStrict)]);
        foreach (var service in Services)
        {
            harness.ServiceAccounts[service] = $"bookinfo-{service}";
        }
        var services = new Dictionary<string, (TestBackend, Sidecar, HttpClient)>();
        async Task StartAsync(string service, params string[] calls)
        {
            var sidecar = await harness.StartSidecarAsync($"{service}-v1", new Dictionary<string, string> { ["app"] = service, ["version"] = "v1" }, [("http", 9080, apps[service].Port)],
                [.. calls.Select(c => $"outbound|9080||{c}.default.svc.cluster.local")]);
            services[service] = (apps[service], sidecar, sidecar.Client());
        }
        // Callees first, so each caller's sidecar starts with its callees' endpoints.
        await StartAsync("details");
        await StartAsync("ratings");
        await StartAsync("reviews", "ratings");
        await StartAsync("productpage", "details", "reviews");
        var sleep = await harness.StartSidecarAsync("sleep", new Dictionary<string, string> { ["app"] = "sleep" }, [], "outbound|9080||productpage.default.svc.cluster.local");
        var bookinfo = new Bookinfo(harness, sleep, services);

        // The apps' own calls, as bookinfo makes them: each through its own sidecar, the callee's status (and, when
        // refused, its body) written into the page, which still renders, as bookinfo's does when a backend fails.
        apps["productpage"].Handlers["/productpage"] = async context =>
        {
            var details = await CallAsync(bookinfo.From("productpage"), "http://details:9080/details/0");
            var reviews = await CallAsync(bookinfo.From("productpage"), "http://reviews:9080/reviews/0");
            await context.Response.WriteAsync($"details: {details}; reviews: {reviews}");
        };
        apps["reviews"].Handlers["/reviews/0"] = async context =>
            await context.Response.WriteAsync($"[ratings: {await CallAsync(bookinfo.From("reviews"), "http://ratings:9080/ratings/0")}]");
        return bookinfo;
    }

    /// <summary>A call's status, with the body when the callee refused it or is productpage's reviews (which carries ratings').</summary>
    private static async Task<string> CallAsync(HttpClient http, string url)
    {
        using var response = await http.GetAsync(url);
        var body = await response.Content.ReadAsStringAsync();
        return response.StatusCode == HttpStatusCode.OK && !body.StartsWith('[') ? "200" : $"{(int)response.StatusCode} {body}";
    }

    private static async Task<(HttpStatusCode Status, string Body)> SendAsync(HttpClient http, HttpMethod method, string url)
    {
        using var request = new HttpRequestMessage(method, url);
        using var response = await http.SendAsync(request).Within(Timeouts.Short);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>The names of the RBAC policies on a sidecar's inbound HCMs, as its current snapshot holds them.</summary>
    private static SortedSet<string> InboundPolicies(Bowline.Proxy.Configuration.ProxySnapshot snapshot) =>
        new(snapshot.Listeners.Values
            .SelectMany(l => l.Source.FilterChains)
            .SelectMany(c => c.Filters)
            .Where(f => f.TypedConfig?.Is(HttpConnectionManager.Descriptor) == true)
            .Select(f => f.TypedConfig.Unpack<HttpConnectionManager>())
            .Where(h => h.StatPrefix.StartsWith("inbound_", StringComparison.Ordinal))
            .SelectMany(h => h.HttpFilters)
            .Where(f => f.Name == "envoy.filters.http.rbac")
            .Select(f => f.TypedConfig.Unpack<HttpRbac>())
            .SelectMany(r => (r.Rules?.Policies.Keys ?? []).Concat(r.ShadowRules?.Policies.Keys ?? [])), StringComparer.Ordinal);

    /// <summary>Waits until <paramref name="sidecar"/> enforces exactly the rules of <paramref name="policies"/> (one rule each) on its inbound.</summary>
    private static async Task WaitForPoliciesAsync(Sidecar sidecar, params string[] policies)
    {
        var expected = new SortedSet<string>(policies.Select(p => $"ns[default]-policy[{p}]-rule[0]"), StringComparer.Ordinal);
        try
        {
            await sidecar.Host.Snapshots.WaitUntilAsync(s => InboundPolicies(s).SetEquals(expected), Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            Assert.Fail($"the sidecar enforces [{string.Join(", ", InboundPolicies(sidecar.Host.Snapshots.Current))}], not [{string.Join(", ", expected)}]");
        }
    }

    /// <summary>What the control plane said about the config: Istio's YAML should need no diagnostic at all.</summary>
    private static async Task<List<string>> DiagnosticsAsync(MeshHarness harness)
    {
        using var http = new HttpClient { Timeout = Timeouts.Short };
        using var config = JsonDocument.Parse(await http.GetStringAsync(new Uri(harness.ControlPlane.MonitoringAddress, "/debug/config")).Within(Timeouts.Short));
        return [.. config.RootElement.GetProperty("diagnostics").EnumerateArray().Select(d => d.GetProperty("text").GetString()!)];
    }

    /// <summary>
    /// One visit as the task makes it (GET the product page), and the POSTs the task's policies never allow: from the
    /// browser to productpage, from productpage to details and reviews, and from reviews to ratings, each with the
    /// caller's own identity. Returns the page, after checking every POST got Envoy's 403.
    /// </summary>
    private static async Task<(HttpStatusCode Status, string Body)> VisitAsync(Bookinfo bookinfo)
    {
        var page = await SendAsync(bookinfo.Browser, HttpMethod.Get, Productpage);
        foreach (var (caller, url) in new[] { ("sleep", Productpage), ("productpage", "http://details:9080/details/0"), ("productpage", "http://reviews:9080/reviews/0"), ("reviews", "http://ratings:9080/ratings/0") })
        {
            var post = await SendAsync(caller == "sleep" ? bookinfo.Browser : bookinfo.From(caller), HttpMethod.Post, url);
            Assert.True(post == (HttpStatusCode.Forbidden, "RBAC: access denied"), $"POST {url} from {caller}: {post}");
        }
        return page;
    }

    private static void AssertDeniedSince(Dictionary<string, long> before, Bookinfo bookinfo, int productpage, int details, int reviews, int ratings, string step)
    {
        var after = bookinfo.Denied();
        var moved = Services.ToDictionary(s => s, s => after[s] - before[s]);
        Assert.True(moved["productpage"] == productpage && moved["details"] == details && moved["reviews"] == reviews && moved["ratings"] == ratings,
            $"{step}: {InboundStats}.denied moved by {string.Join(", ", moved.Select(m => $"{m.Key} {m.Value}"))}; expected productpage {productpage}, details {details}, reviews {reviews}, ratings {ratings}");
    }

    [Fact]
    public async Task AuthzHttpTask_PoliciesAppliedLiveStepByStep_OpenTheCallChainOneHopAtATime_PostsStayDenied()
    {
        await using var bookinfo = await StartBookinfoAsync();
        var harness = bookinfo.Harness;

        // Before the task: bookinfo works end to end over mTLS.
        Assert.Equal((HttpStatusCode.OK, "details: 200; reviews: 200 [ratings: 200]"), await SendAsync(bookinfo.Browser, HttpMethod.Get, Productpage));

        // "allow-nothing": every workload of the namespace denies everything; the page is Envoy's 403.
        await harness.WriteConfigAsync("allow-nothing.yaml", AllowNothing);
        foreach (var service in Services)
        {
            await WaitForPoliciesAsync(bookinfo.Sidecar(service), "allow-nothing");
        }
        var denied = bookinfo.Denied();
        var received = Services.ToDictionary(s => s, s => bookinfo.App(s).Received.Count);
        Assert.Equal((HttpStatusCode.Forbidden, "RBAC: access denied"), await VisitAsync(bookinfo));
        AssertDeniedSince(denied, bookinfo, productpage: 2, details: 1, reviews: 1, ratings: 1, "allow-nothing");
        // Refused at each sidecar: no app saw any of those requests.
        Assert.All(Services, s => Assert.Equal(received[s], bookinfo.App(s).Received.Count));

        // "productpage-viewer": GET to productpage passes; its calls to details and reviews are refused there.
        await harness.WriteConfigAsync("productpage-viewer.yaml", ProductpageViewer);
        await WaitForPoliciesAsync(bookinfo.Sidecar("productpage"), "allow-nothing", "productpage-viewer");
        denied = bookinfo.Denied();
        var allowed = bookinfo.Rbac("productpage", "allowed");
        Assert.Equal((HttpStatusCode.OK, "details: 403 RBAC: access denied; reviews: 403 RBAC: access denied"), await VisitAsync(bookinfo));
        AssertDeniedSince(denied, bookinfo, productpage: 1, details: 2, reviews: 2, ratings: 1, "productpage-viewer");
        Assert.Equal(allowed + 1, bookinfo.Rbac("productpage", "allowed"));

        // "details-viewer" and "reviews-viewer": productpage's identity may GET both; reviews' call to ratings is refused.
        await harness.WriteConfigAsync("details-reviews-viewer.yaml", DetailsAndReviewsViewers);
        await WaitForPoliciesAsync(bookinfo.Sidecar("details"), "allow-nothing", "details-viewer");
        await WaitForPoliciesAsync(bookinfo.Sidecar("reviews"), "allow-nothing", "reviews-viewer");
        denied = bookinfo.Denied();
        Assert.Equal((HttpStatusCode.OK, "details: 200; reviews: 200 [ratings: 403 RBAC: access denied]"), await VisitAsync(bookinfo));
        AssertDeniedSince(denied, bookinfo, productpage: 1, details: 1, reviews: 1, ratings: 2, "details-viewer + reviews-viewer");
        // The browser is not productpage: the same GET to details from sleep is refused.
        Assert.Equal((HttpStatusCode.Forbidden, "RBAC: access denied"), await SendAsync(bookinfo.Browser, HttpMethod.Get, "http://details:9080/details/0"));

        // "ratings-viewer": reviews' identity may GET ratings; the whole page renders.
        await harness.WriteConfigAsync("ratings-viewer.yaml", RatingsViewer);
        await WaitForPoliciesAsync(bookinfo.Sidecar("ratings"), "allow-nothing", "ratings-viewer");
        denied = bookinfo.Denied();
        Assert.Equal((HttpStatusCode.OK, "details: 200; reviews: 200 [ratings: 200]"), await VisitAsync(bookinfo));
        AssertDeniedSince(denied, bookinfo, productpage: 1, details: 1, reviews: 1, ratings: 1, "ratings-viewer");
        // productpage's identity is not reviews': it still may not read ratings directly.
        Assert.Equal((HttpStatusCode.Forbidden, "RBAC: access denied"), await SendAsync(bookinfo.From("productpage"), HttpMethod.Get, "http://ratings:9080/ratings/0"));

        Assert.Empty(await DiagnosticsAsync(harness));
    }

    /// <summary>
    /// reviews behind its sidecar, and two callers in the mesh with bookinfo's identities (productpage, ratings);
    /// <paramref name="config"/> decides mTLS and the policies (each policy file named after its policy, which the
    /// server sidecar is waited on to enforce).
    /// </summary>
    private static async Task<(MeshHarness Harness, TestBackend Reviews, Sidecar Server, Sidecar Productpage, Sidecar Ratings)> StartReviewsAsync(Bowline.ControlPlane.Config.PathNormalization paths, params (string File, string Yaml)[] config)
    {
        var reviews = await TestBackend.StartAsync("reviews");
        var harness = await MeshHarness.StartMtlsAsync(paths, [("reviews.yaml", MeshYaml.Service("reviews", 9080)), .. config]);
        harness.ServiceAccounts["productpage"] = "bookinfo-productpage";
        harness.ServiceAccounts["ratings"] = "bookinfo-ratings";
        var server = await harness.StartSidecarAsync("reviews-v1", new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v1" }, [("http", 9080, reviews.Port)]);
        var productpage = await harness.StartSidecarAsync("productpage-v1", new Dictionary<string, string> { ["app"] = "productpage" }, [], "outbound|9080||reviews.default.svc.cluster.local");
        var ratings = await harness.StartSidecarAsync("ratings-v1", new Dictionary<string, string> { ["app"] = "ratings" }, [], "outbound|9080||reviews.default.svc.cluster.local");
        var policies = config.Where(c => c.Yaml.Contains("kind: AuthorizationPolicy", StringComparison.Ordinal)).Select(c => Path.GetFileNameWithoutExtension(c.File)).ToArray();
        await WaitForPoliciesAsync(server, policies);
        return (harness, reviews, server, productpage, ratings);
    }

    /// <summary>A plaintext client outside the mesh, straight to the sidecar's inbound port (curl without a sidecar).</summary>
    private static async Task<(HttpStatusCode Status, string Body)> PlaintextAsync(MeshHarness harness, string path)
    {
        using var curl = new HttpClient(new SocketsHttpHandler()) { Timeout = Timeouts.Short };
        return await SendAsync(curl, HttpMethod.Get, $"http://127.0.0.1:{harness.InboundPortOf("reviews-v1")}{path}");
    }

    [Fact]
    public async Task DenyNotPrincipals_OnAdminPaths_PlaintextAndOtherIdentitiesAreDenied_OnlyTheNamedPrincipalGetsThrough()
    {
        // Istio's advice for refusing everyone but one identity: DENY with a negative match. Under PERMISSIVE (no
        // PeerAuthentication) plaintext reaches the sidecar, has no principal, so it matches notPrincipals: denied.
        var (harness, reviews, server, productpage, ratings) = await StartReviewsAsync(Bowline.ControlPlane.Config.PathNormalization.Base, ("admin-only-productpage.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: admin-only-productpage
              namespace: default
            spec:
              selector:
                matchLabels:
                  app: reviews
              action: DENY
              rules:
              - from:
                - source:
                    notPrincipals: ["cluster.local/ns/default/sa/bookinfo-productpage"]
                to:
                - operation:
                    paths: ["/admin*"]
            """));
        await using var _ = harness;
        await using var __ = reviews;
        using var fromProductpage = productpage.Client();
        using var fromRatings = ratings.Client();
        using var certificates = MeshCertificates.Load(harness.CaDirectory!);
        using var curlCertificate = certificates.Workload("curl");

        var named = await SendAsync(fromProductpage, HttpMethod.Get, "http://reviews:9080/admin/users");
        var otherIdentity = await SendAsync(fromRatings, HttpMethod.Get, "http://reviews:9080/admin/users");
        var plaintext = await PlaintextAsync(harness, "/admin/users");
        var testMadeIdentity = await MeshTlsClient.SendAsync(harness.InboundPortOf("reviews-v1"), curlCertificate, "/admin/users");
        // The rule is about /admin*: elsewhere every caller is let in, plaintext too (PERMISSIVE).
        var plaintextElsewhere = await PlaintextAsync(harness, "/reviews/0");
        var otherIdentityElsewhere = await SendAsync(fromRatings, HttpMethod.Get, "http://reviews:9080/reviews/0");

        Assert.Equal(HttpStatusCode.OK, named.Status);
        Assert.Equal((HttpStatusCode.Forbidden, "RBAC: access denied"), otherIdentity);
        Assert.Equal((HttpStatusCode.Forbidden, "RBAC: access denied"), plaintext);
        Assert.Equal(403, testMadeIdentity.Status);
        Assert.Equal(HttpStatusCode.OK, plaintextElsewhere.Status);
        Assert.Equal(HttpStatusCode.OK, otherIdentityElsewhere.Status);
        // Only the named principal's request reached reviews' app under /admin.
        Assert.Equal(1, reviews.Received.Count(r => r.Path.StartsWith("/admin", StringComparison.Ordinal)));
        Assert.Equal(3, server.Host.Stats.ValueOf($"{InboundStats}.denied"));
        Assert.Empty(await DiagnosticsAsync(harness));
    }

    [Fact]
    public async Task AllowNotPrincipals_PlaintextUnderPermissive_IsDenied_BecauseANegatedIdentityNeedsAnIdentity()
    {
        // Bowline's deliberate difference from Istio (docs/security.md): in Istio this ALLOW rule admits plaintext,
        // which has no principal and so is "not ratings". Bowline requires an mTLS identity for a negated identity match.
        var (harness, reviews, server, productpage, ratings) = await StartReviewsAsync(Bowline.ControlPlane.Config.PathNormalization.Base, ("all-but-ratings.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: all-but-ratings
              namespace: default
            spec:
              selector:
                matchLabels:
                  app: reviews
              action: ALLOW
              rules:
              - from:
                - source:
                    notPrincipals: ["cluster.local/ns/default/sa/bookinfo-ratings"]
            """));
        await using var _ = harness;
        await using var __ = reviews;
        using var fromProductpage = productpage.Client();
        using var fromRatings = ratings.Client();

        Assert.Equal(HttpStatusCode.OK, (await SendAsync(fromProductpage, HttpMethod.Get, "http://reviews:9080/reviews/0")).Status);
        Assert.Equal((HttpStatusCode.Forbidden, "RBAC: access denied"), await SendAsync(fromRatings, HttpMethod.Get, "http://reviews:9080/reviews/0"));
        Assert.Equal((HttpStatusCode.Forbidden, "RBAC: access denied"), await PlaintextAsync(harness, "/reviews/0"));
        Assert.Equal(2, server.Host.Stats.ValueOf($"{InboundStats}.denied"));
        Assert.Single(reviews.Received);
    }

    [Theory]
    [InlineData(Bowline.ControlPlane.Config.PathNormalization.DecodeAndMergeSlashes)]
    [InlineData(Bowline.ControlPlane.Config.PathNormalization.MergeSlashes)]
    [InlineData(Bowline.ControlPlane.Config.PathNormalization.Base)]
    public async Task PathNormalization_DenyOnAdminPrefix_DotSegmentsAndEncodedDots_AreDeniedAndNeverReachTheApp_DoubleSlashesOnlyOnceMerged(Bowline.ControlPlane.Config.PathNormalization paths)
    {
        // The bytes go straight to reviews' inbound over mTLS (a test-made mesh certificate, ALPN istio), so no client
        // sidecar tidies the path first: what the server's sidecar decides on is exactly what was sent.
        var (harness, reviews, server, _, _) = await StartReviewsAsync(paths, ("peer-authentication.yaml", MeshWideStrict), ("deny-admin.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: deny-admin
              namespace: default
            spec:
              selector:
                matchLabels:
                  app: reviews
              action: DENY
              rules:
              - to:
                - operation:
                    paths: ["/admin*"]
            """));
        await using var _ = harness;
        await using var __ = reviews;
        using var certificates = MeshCertificates.Load(harness.CaDirectory!);
        using var curl = certificates.Workload("curl");
        // Istio's BASE does not merge slashes, so //admin is not under /admin* and is let through, as in Istio; its
        // security best practices ask for MERGE_SLASHES (or DECODE_AND_MERGE_SLASHES) for exactly this reason.
        var merged = paths != Bowline.ControlPlane.Config.PathNormalization.Base;
        // Only DECODE_AND_MERGE_SLASHES reads %2F as a separator; under the others it is part of a segment's name.
        var decoded = paths == Bowline.ControlPlane.Config.PathNormalization.DecodeAndMergeSlashes;
        var expected = new Dictionary<string, int>(StringComparer.Ordinal)
        {
            ["/admin"] = 403,
            ["/admin/users"] = 403,
            ["/public/../admin"] = 403,
            ["/./admin"] = 403,
            ["/public/%2e%2e/admin"] = 403,
            ["/public/%2E%2E/admin/users"] = 403,
            ["/%2e/admin"] = 403,
            ["//admin"] = merged ? 403 : 200,
            ["///admin/users"] = merged ? 403 : 200,
            ["/public\\..\\admin"] = 403,
            ["/public/..%2Fadmin"] = decoded ? 403 : 200,
            ["/public/..%2fadmin"] = decoded ? 403 : 200,
            ["/public/x"] = 200,
        };

        var actual = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var target in expected.Keys)
        {
            var outcome = await MeshTlsClient.SendAsync(harness.InboundPortOf("reviews-v1"), curl, target);
            Assert.True(outcome.Status != 403 || outcome.Response.Contains("\r\nRBAC: access denied\r\n", StringComparison.Ordinal), outcome.Response);
            actual[target] = outcome.Status;
        }

        Assert.Equal(expected, actual);
        Assert.Equal(expected.Values.Count(s => s == 403), server.Host.Stats.ValueOf($"{InboundStats}.denied"));
        // What reached the app: exactly the requests let in, each with its path as sent (nothing to normalize in them).
        Assert.Equal(expected.Where(e => e.Value == 200).Select(e => e.Key).Order(StringComparer.Ordinal), reviews.Received.Select(r => r.Path).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(reviews.Received, r => r.Path.StartsWith("/admin", StringComparison.Ordinal));
    }
}
