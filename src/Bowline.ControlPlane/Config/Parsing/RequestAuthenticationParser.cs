using System.Text.Json;

namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>
/// Istio <c>RequestAuthentication</c> with Istio's rules (pkg/config/validation ValidateRequestAuthentication and the
/// CRD's schema): at most one of selector, targetRef and targetRefs; a selector's labels as for every Istio policy; each
/// targetRef names a Service, ServiceEntry, Gateway or GatewayClass in the policy's namespace; each JWT rule has an
/// issuer or a jwksUri, at most one of jwks and jwksUri, an http(s) jwksUri, a JWKS that parses, non-empty locations and
/// audiences, claim-to-header names of <c>[-_A-Za-z0-9]</c>, and a timeout of at least 1ms. Bowline adds what would
/// otherwise make a proxy reject the whole listener: header names must be HTTP tokens, and an inline JWKS must carry a
/// <c>keys</c> list.
/// </summary>
internal static class RequestAuthenticationParser
{
    /// <summary>The CRD's limits.</summary>
    private const int MaxJwtRules = 4096;
    private const int MaxTargetRefs = 16;
    private const int MaxJwksUriLength = 2048;
    private const int MaxSpaceDelimitedClaims = 64;

    public static MeshResource? Parse(ResourceMeta meta, FieldReader spec)
    {
        var before = spec.ErrorCount;
        var selectors = new[] { "selector", "targetRef", "targetRefs" }.Where(spec.Has).ToList();
        if (selectors.Count > 1)
        {
            spec.Error(selectors[1], $"only one of selector, targetRef and targetRefs may be set, and this policy sets {string.Join(" and ", selectors)}; keep the one that says which workloads it is for");
        }
        var selector = PolicySelectorParser.Selector(spec);
        var targetRefs = TargetRefs(spec);

        var rules = new List<JwtRule>();
        var ruleReaders = spec.MapList("jwtRules");
        if (ruleReaders.Count > MaxJwtRules)
        {
            spec.Error("jwtRules", $"{ruleReaders.Count} rules are too many; at most {MaxJwtRules}");
        }
        var issuers = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < ruleReaders.Count; i++)
        {
            if (Rule(ruleReaders[i]) is { } rule)
            {
                if (rule.Issuer.Length > 0 && !issuers.TryAdd(rule.Issuer, i))
                {
                    // Istio accepts it (istio/istio#19245) and so do we; both rules become providers, but it is rarely meant.
                    ruleReaders[i].Warning("issuer", $"issuer {rule.Issuer} is also the issuer of jwtRules[{issuers[rule.Issuer]}]; a token of this issuer passes if either rule accepts it. If both describe one issuer, merge them into one rule");
                }
                rules.Add(rule);
            }
        }
        if (rules.Count == 0 && spec.ErrorCount == before)
        {
            spec.Warning("jwtRules", "the policy has no jwtRules, so it validates no token; add a rule with an issuer and its jwksUri or jwks");
        }
        return spec.ErrorCount == before ? new RequestAuthentication(meta, selector, targetRefs, rules) : null;
    }

    private static IReadOnlyList<PolicyTargetRef> TargetRefs(FieldReader spec)
    {
        var readers = spec.MapList("targetRefs").ToList();
        if (readers.Count > MaxTargetRefs)
        {
            spec.Error("targetRefs", $"{readers.Count} targetRefs are too many; at most {MaxTargetRefs}");
        }
        if (spec.Map("targetRef") is { } single)
        {
            readers.Add(single);
        }
        var result = new List<PolicyTargetRef>();
        foreach (var reader in readers)
        {
            var group = reader.String("group") ?? "";
            var kind = reader.String("kind", required: true);
            var name = reader.String("name", required: true);
            if (reader.String("namespace") is { Length: > 0 })
            {
                reader.Error("namespace", "cross-namespace references are not supported (Istio's rule); remove namespace and put the policy in the namespace of its target");
            }
            reader.Finish();
            if (kind is null || name is null)
            {
                continue;
            }
            if (name.Length == 0)
            {
                reader.Error("name", "must name the target resource");
                continue;
            }
            var canonical = group.Length == 0 ? "core" : group;
            var allowed = (canonical, kind) is ("core", "Service") or ("networking.istio.io", "ServiceEntry")
                or (PolicyTargetRef.GatewayApiGroup, "Gateway") or (PolicyTargetRef.GatewayApiGroup, "GatewayClass");
            if (!allowed)
            {
                reader.Error("kind", $"a targetRef must name a Service (group \"\"), a ServiceEntry (networking.istio.io), or a Gateway or GatewayClass ({PolicyTargetRef.GatewayApiGroup}), not {group}/{kind}");
                continue;
            }
            if (kind != "Gateway")
            {
                // Istio attaches these only to waypoints (ambient mode); a sidecar ignores a policy with targetRefs.
                reader.Warning("kind", $"a targetRef to a {kind} binds the policy to waypoints, which Bowline does not run: it applies to no proxy. Use a selector for the workloads' sidecars");
            }
            result.Add(new PolicyTargetRef(group, kind, name));
        }
        return result;
    }

    private static JwtRule? Rule(FieldReader rule)
    {
        var before = rule.ErrorCount;
        var issuer = rule.String("issuer");
        if (issuer is { Length: 0 })
        {
            rule.Error("issuer", "must not be empty; give the issuer's iss claim, or remove the field and give a jwksUri");
        }
        var jwksUriField = rule.Has("jwks_uri") && !rule.Has("jwksUri") ? "jwks_uri" : "jwksUri";
        var jwksUri = rule.String("jwksUri") ?? rule.String("jwks_uri");
        var jwks = rule.String("jwks");
        var keySources = new[] { "jwksUri", "jwks_uri", "jwks" }.Where(rule.Has).ToList();
        if (keySources.Count > 1)
        {
            rule.Error(keySources[1], $"only one of jwks and jwksUri may be set, and this rule sets {string.Join(" and ", keySources)}; keep the inline keys or the URL, not both");
        }
        if (string.IsNullOrEmpty(issuer) && string.IsNullOrEmpty(jwksUri))
        {
            rule.Error("issuer", "a JWT rule needs an issuer or a jwksUri (Istio's rule); give the issuer whose tokens this rule accepts");
        }
        if (jwksUri is not null && JwksUriProblem(jwksUri) is { } uriProblem)
        {
            rule.Error(jwksUriField, uriProblem);
        }
        if (jwks is not null)
        {
            foreach (var (isError, message) in JwksProblems(jwks))
            {
                if (isError)
                {
                    rule.Error("jwks", message);
                }
                else
                {
                    rule.Warning("jwks", message);
                }
            }
        }

        var audiences = rule.StringList("audiences");
        if (audiences.Any(a => a.Length == 0))
        {
            rule.Error("audiences", "an audience must not be empty; remove the empty entry (no audiences at all accepts any aud)");
        }

        var headers = new List<JwtHeaderLocation>();
        foreach (var header in rule.MapList("fromHeaders"))
        {
            var name = header.String("name", required: true);
            var prefix = header.String("prefix") ?? "";
            header.Finish();
            if (name is null)
            {
                continue;
            }
            if (HeaderNameProblem(name) is { } problem)
            {
                header.Error("name", problem);
                continue;
            }
            headers.Add(new JwtHeaderLocation(name, prefix));
        }
        var parameters = NonEmptyList(rule, "fromParams", "a query parameter name");
        var cookies = NonEmptyList(rule, "fromCookies", "a cookie name");

        var forward = rule.Bool("forwardOriginalToken") ?? false;
        var payloadHeader = rule.String("outputPayloadToHeader");
        if (payloadHeader is not null && HeaderNameProblem(payloadHeader) is { } payloadProblem)
        {
            rule.Error("outputPayloadToHeader", payloadProblem);
        }
        var claimHeaders = new List<JwtClaimToHeader>();
        foreach (var entry in rule.MapList("outputClaimToHeaders"))
        {
            var header = entry.String("header", required: true);
            var claim = entry.String("claim", required: true);
            entry.Finish();
            if (header is null || claim is null)
            {
                continue;
            }
            if (claim.Length == 0)
            {
                entry.Error("claim", "must name the claim to copy (sub, or a nested one like a.b)");
                continue;
            }
            if (header.Length == 0 || !header.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                entry.Error("header", $"'{header}' is not a valid header name here: Istio allows only letters, digits, '-' and '_'");
                continue;
            }
            claimHeaders.Add(new JwtClaimToHeader(header, claim));
        }
        var timeout = rule.IstioDuration("timeout");
        var spaceDelimited = NonEmptyList(rule, "spaceDelimitedClaims", "a claim name");
        if (spaceDelimited.Count > MaxSpaceDelimitedClaims)
        {
            rule.Error("spaceDelimitedClaims", $"{spaceDelimited.Count} claims are too many; at most {MaxSpaceDelimitedClaims}");
        }
        if (rule.String("presence") is { } presence)
        {
            if (presence is not ("OPTIONAL" or "REQUIRED"))
            {
                rule.Error("presence", $"'{presence}' must be OPTIONAL or REQUIRED");
            }
            else if (presence == "REQUIRED")
            {
                // A security control the operator asked for must not be silently absent.
                rule.Warning("presence", "presence: REQUIRED is not supported by Bowline yet and is NOT enforced: a request without a token still passes authentication. Require one with an AuthorizationPolicy (requestPrincipals: [\"*\"])");
            }
        }
        rule.Finish();
        if (rule.ErrorCount != before)
        {
            return null;
        }
        return new JwtRule(issuer ?? "", audiences, jwksUri, jwks, headers, parameters, cookies, forward, payloadHeader, claimHeaders, timeout, spaceDelimited);
    }

    private static List<string> NonEmptyList(FieldReader rule, string key, string what)
    {
        var values = rule.StringList(key).ToList();
        if (values.Any(v => v.Length == 0))
        {
            rule.Error(key, $"{what} must not be empty; remove the empty entry");
        }
        return values;
    }

    /// <summary>Why a jwksUri is not one the control plane can fetch, or null.</summary>
    internal static string? JwksUriProblem(string uri)
    {
        if (uri.Length == 0)
        {
            return "must not be empty; give the URL of the issuer's JWKS (https://issuer.example.com/.well-known/jwks.json)";
        }
        if (uri.Length > MaxJwksUriLength)
        {
            return $"the URL is {uri.Length} characters long; at most {MaxJwksUriLength}";
        }
        if (!Uri.TryCreate(uri, UriKind.Absolute, out var parsed) || parsed.Host.Length == 0)
        {
            return $"'{uri}' is not an absolute URL; write it like https://issuer.example.com/.well-known/jwks.json";
        }
        if (parsed.Scheme is not ("http" or "https"))
        {
            return $"the URL scheme '{parsed.Scheme}' is not supported; a jwksUri must start with http:// or https://";
        }
        return null;
    }

    /// <summary>RFC 9110's token characters: what Envoy accepts as a header name it reads or writes.</summary>
    internal static string? HeaderNameProblem(string name) =>
        name.Length > 0 && name.All(c => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal))
            ? null
            : $"'{name}' is not a valid HTTP header name; use letters, digits and - (x-jwt-assertion)";

    /// <summary>
    /// Checks an inline JWKS as Envoy will read it: JSON with a <c>keys</c> list, each key a JSON object with a
    /// <c>kty</c> and that type's public fields. Private key material is a warning, as in Istio: only public keys are needed.
    /// </summary>
    internal static IEnumerable<(bool IsError, string Message)> JwksProblems(string jwks)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(jwks);
        }
        catch (JsonException e)
        {
            return [(true, $"the JWKS is not valid JSON ({e.Message}); paste the issuer's JWKS document, {{\"keys\": [...]}}")];
        }
        using (document)
        {
            var problems = new List<(bool, string)>();
            if (document.RootElement.ValueKind != JsonValueKind.Object || !document.RootElement.TryGetProperty("keys", out var keys) || keys.ValueKind != JsonValueKind.Array)
            {
                return [(true, "the JWKS must be a JSON object with a \"keys\" list ({\"keys\": [{\"kty\": \"RSA\", ...}]}); a single key must be wrapped in one")];
            }
            var index = 0;
            foreach (var key in keys.EnumerateArray())
            {
                if (KeyProblem(key) is { } problem)
                {
                    problems.Add((true, $"keys[{index}]: {problem}"));
                }
                else if (HasPrivateMaterial(key))
                {
                    problems.Add((false, $"keys[{index}] contains private key material; only public keys are needed to verify tokens, so publish the public key alone"));
                }
                index++;
            }
            return problems;
        }
    }

    private static string? KeyProblem(JsonElement key)
    {
        if (key.ValueKind != JsonValueKind.Object)
        {
            return "a key must be a JSON object";
        }
        if (!key.TryGetProperty("kty", out var kty) || kty.ValueKind != JsonValueKind.String)
        {
            return "a key needs a kty (RSA, EC, oct or OKP)";
        }
        string[]? needed = kty.GetString() switch
        {
            "RSA" => ["n", "e"],
            "EC" => ["crv", "x", "y"],
            "oct" => ["k"],
            "OKP" => ["crv", "x"],
            _ => null,
        };
        if (needed is null)
        {
            return $"kty '{kty.GetString()}' is not a key type; use RSA, EC, oct or OKP";
        }
        var missing = needed.Where(f => !key.TryGetProperty(f, out var v) || v.ValueKind != JsonValueKind.String).ToList();
        return missing.Count == 0 ? null : $"a {kty.GetString()} key needs {string.Join(", ", missing)}";
    }

    private static bool HasPrivateMaterial(JsonElement key) =>
        key.TryGetProperty("d", out _) || (key.TryGetProperty("kty", out var kty) && kty.GetString() == "oct");
}
