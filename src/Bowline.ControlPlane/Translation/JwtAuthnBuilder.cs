using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Security;
using Bowline.ControlPlane.Snapshots;
using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Http.JwtAuthn.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// RequestAuthentication as Envoy's <c>envoy.filters.http.jwt_authn</c>, the way Istio builds it
/// (pilot/pkg/security/authn/policy_applier.go): one provider per JWT rule that applies to the proxy, named
/// <c>origins-&lt;i&gt;</c> in issuer order, its keys inline (<c>local_jwks</c>: the control plane fetched any jwksUri,
/// as istiod does by default), its verified payload in the dynamic metadata under <c>payload</c>, where RBAC reads
/// claims; and one rule for every path under which a missing token passes (authorization decides) and a bad one is 401.
/// </summary>
internal static class JwtAuthnBuilder
{
    public const string FilterName = "envoy.filters.http.jwt_authn";

    /// <summary>Istio's <c>filters.EnvoyJwtFilterPayload</c>: RBAC matches claims at <c>[payload, &lt;claim&gt;]</c> of this filter's metadata.</summary>
    public const string PayloadInMetadata = "payload";

    /// <summary>Claims Istio always splits on spaces, so <c>scope: "read write"</c> matches a policy on <c>read</c>.</summary>
    private static readonly string[] DefaultSpaceDelimitedClaims = ["permission", "scope"];

    /// <summary>
    /// A JWKS with one RSA public key whose private key was generated and destroyed at once: it verifies no token
    /// anyone can make. Served for an issuer whose keys were never fetched, so its tokens are refused (401) rather than
    /// accepted unverified, and rather than the whole listener being refused for a missing key set.
    /// </summary>
    public const string VerifiesNothingJwks = """{"keys":[{"kty":"RSA","alg":"RS256","use":"sig","kid":"bowline-verifies-nothing","e":"AQAB","n":"uJPyBWHYMIGhJeq7TcKJ6GNR_1FrgPhl0WI4yvtrEaHY_uomxmOSSJIsJhvi9h7oro1Ye5oxe704AyrHgCO4Klo3hRXZWthtuj-ghhK7hKLIlkHiRdApPMmRLhYm_NrxCCOCJyq5WgZFvvz5oEzLAr916FBRjPkIAp7-eNp_jatlA_D5W0LQOXv2r_eUGIF9KDPWl9ID_L2_mFMnD4LXfW_kir7c9gmWqDp_CFX57N-si-3BiPSXIw32l_G7M8vZzF07hF-plSOei872HLeYko7MsRaCm4ZJkzWdoPRh7wdKMTMNZNjW0nwYfYT-G2Tphnh9ZDZXvCESpGsULGMPNw"}]}""";

    /// <summary>
    /// The filter for the inbound HCMs of a sidecar or the HCMs of a gateway; null when no RequestAuthentication
    /// applies to it. A gateway clears the route cache after validation (as Istio sets it for every non-sidecar), so
    /// routes can match on what the filter wrote.
    /// </summary>
    public static HttpFilter? ForProxy(ProxyNode node, ServiceIndex index, SnapshotBuilder snapshot)
    {
        var rules = index.Config.RequestAuthentication.ForWorkload(node.Namespace, node.Labels);
        if (rules.Count == 0)
        {
            return null;
        }
        var config = Build(rules, index.Config.Jwks, clearRouteCache: node.Kind != ProxyKind.Sidecar, snapshot);
        return new HttpFilter { Name = FilterName, TypedConfig = Any.Pack(config) };
    }

    /// <summary>
    /// Puts <paramref name="filter"/> first among the HCM's HTTP filters, before RBAC, fault, CORS, rate limit and the
    /// router: a request is authenticated before anything decides on it. Call it last when building an HCM, so it
    /// stays first whatever else was inserted.
    /// </summary>
    public static void InsertFirst(HttpConnectionManager hcm, HttpFilter? filter)
    {
        if (filter is not null)
        {
            hcm.HttpFilters.Insert(IstioTelemetryBuilder.FirstPolicyIndex(hcm), filter.Clone());
        }
    }

    internal static JwtAuthentication Build(IReadOnlyList<AppliedJwtRule> rules, JwksSnapshot jwks, bool clearRouteCache, SnapshotBuilder snapshot)
    {
        var config = new JwtAuthentication { BypassCorsPreflight = true };
        var eachOrMissing = new JwtRequirementAndList();
        var anyProvider = new JwtRequirementOrList();
        for (var i = 0; i < rules.Count; i++)
        {
            var name = $"origins-{i}";
            config.Providers[name] = Provider(rules[i], jwks, clearRouteCache, snapshot);
            eachOrMissing.Requirements.Add(new JwtRequirement
            {
                RequiresAny = new JwtRequirementOrList { Requirements = { new JwtRequirement { ProviderName = name }, new JwtRequirement { AllowMissing = new Empty() } } },
            });
            anyProvider.Requirements.Add(new JwtRequirement { ProviderName = name });
        }
        JwtRequirement requires;
        if (rules.Count == 1)
        {
            requires = eachOrMissing.Requirements[0];
        }
        else
        {
            // Istio's shape: every token present must be valid for its provider (the AND of "provider or missing"), or
            // one provider accepts it; the second half is for providers that read the same header, where a token of one
            // issuer is necessarily invalid for the other.
            anyProvider.Requirements.Add(new JwtRequirement { RequiresAll = eachOrMissing });
            requires = new JwtRequirement { RequiresAny = anyProvider };
        }
        config.Rules.Add(new RequirementRule { Match = new RouteMatch { Prefix = "/" }, Requires = requires });
        return config;
    }

    private static JwtProvider Provider(AppliedJwtRule applied, JwksSnapshot jwks, bool clearRouteCache, SnapshotBuilder snapshot)
    {
        var rule = applied.Rule;
        var provider = new JwtProvider
        {
            Issuer = rule.Issuer,
            Audiences = { rule.Audiences },
            Forward = rule.ForwardOriginalToken,
            ForwardPayloadHeader = rule.OutputPayloadToHeader ?? "",
            PayloadInMetadata = PayloadInMetadata,
            NormalizePayloadInMetadata = new JwtProvider.Types.NormalizePayload
            {
                SpaceDelimitedClaims = { rule.SpaceDelimitedClaims.Concat(DefaultSpaceDelimitedClaims).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal) },
            },
            ClearRouteCache = clearRouteCache,
            // No locations given: Envoy's default (Authorization: Bearer, then the access_token parameter), as Istio leaves it.
            FromParams = { rule.FromParams },
            FromCookies = { rule.FromCookies },
            LocalJwks = new DataSource { InlineString = Keys(applied, jwks, snapshot) },
        };
        provider.FromHeaders.AddRange(rule.FromHeaders.Select(h => new JwtHeader { Name = h.Name, ValuePrefix = h.Prefix }));
        provider.ClaimToHeaders.AddRange(rule.OutputClaimToHeaders.Select(c => new Envoy.Extensions.Filters.Http.JwtAuthn.V3.JwtClaimToHeader { HeaderName = c.Header, ClaimName = c.Claim }));
        return provider;
    }

    /// <summary>The rule's inline keys, or the fetched ones; never nothing: an issuer without keys gets keys that verify no token.</summary>
    private static string Keys(AppliedJwtRule applied, JwksSnapshot jwks, SnapshotBuilder snapshot)
    {
        var rule = applied.Rule;
        if (rule.Jwks is { } inline)
        {
            return inline;
        }
        var source = JwksSource.KeyOf(rule);
        var entry = jwks.Find(source);
        if (entry?.Jwks is { } fetched)
        {
            if (entry.Stale)
            {
                snapshot.Warn($"{applied}: serving the JWKS of issuer {rule.Issuer} fetched from {source} at {entry.FetchedAt:O}, because refreshing it fails ({entry.LastError}); a key the issuer has rotated in since is not known yet");
            }
            return fetched;
        }
        var why = entry?.LastError is { } error ? $"fetching it failed ({error})" : "it has not been fetched yet";
        snapshot.Warn($"{applied}: tokens of issuer {(rule.Issuer.Length > 0 ? rule.Issuer : "(any)")} are REJECTED (401): the control plane has no JWKS from {source}: {why}. It keeps retrying; check that the URL is right and reachable from the control plane");
        return VerifiesNothingJwks;
    }
}
