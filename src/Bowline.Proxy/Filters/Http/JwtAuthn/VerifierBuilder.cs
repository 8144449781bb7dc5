using Bowline.Proxy.Configuration;
using Envoy.Extensions.Filters.Http.JwtAuthn.V3;

namespace Bowline.Proxy.Filters.Http.JwtAuthn;

/// <summary>
/// Turns <c>JwtRequirement</c>s into verifier trees, as Envoy builds them: inside <c>requires_any</c>, the
/// <c>allow_missing</c> and <c>allow_missing_or_failed</c> entries are not verifiers of their own but loosen what the
/// list accepts (a list of nothing else becomes the one allow verifier); on their own they read every provider's
/// locations and pick the provider by the token's issuer.
/// </summary>
internal sealed class VerifierBuilder
{
    private readonly IReadOnlyDictionary<string, JwtProviderConfig> _providers;
    private readonly JwtAuthenticator _authenticator;
    private readonly TokenExtractor _allProviders;

    public VerifierBuilder(IReadOnlyDictionary<string, JwtProviderConfig> providers)
    {
        _providers = providers;
        var ordered = providers.Values.OrderBy(p => p.Name, StringComparer.Ordinal).ToArray();
        _authenticator = new JwtAuthenticator(ordered);
        _allProviders = new TokenExtractor(ordered);
    }

    public JwtVerifier Build(JwtRequirement requirement, string where)
    {
        XdsFields.Check(requirement, where, "provider_name", "provider_and_audiences", "requires_any", "requires_all", "allow_missing_or_failed", "allow_missing");
        switch (requirement.RequiresTypeCase)
        {
            case JwtRequirement.RequiresTypeOneofCase.ProviderName:
                return new ProviderVerifier(Provider(requirement.ProviderName, where), null, _authenticator);
            case JwtRequirement.RequiresTypeOneofCase.ProviderAndAudiences:
                var pa = requirement.ProviderAndAudiences;
                XdsFields.Check(pa, where + " provider_and_audiences", "provider_name", "audiences");
                var provider = Provider(pa.ProviderName, where);
                return new ProviderVerifier(provider, pa.Audiences.Count == 0 ? null : pa.Audiences.Select(JwtProviderConfig.SanitizeAudience).ToHashSet(StringComparer.Ordinal), _authenticator);
            case JwtRequirement.RequiresTypeOneofCase.RequiresAny:
                return Any(requirement.RequiresAny, where + " requires_any");
            case JwtRequirement.RequiresTypeOneofCase.RequiresAll:
                var all = requirement.RequiresAll;
                XdsFields.Check(all, where + " requires_all", "requirements");
                RequireTwo(all.Requirements.Count, where + " requires_all");
                return new AllVerifier([.. all.Requirements.Select((r, i) => Build(r, $"{where} requires_all[{i}]"))]);
            case JwtRequirement.RequiresTypeOneofCase.AllowMissingOrFailed:
                return new AllowMissingVerifier(_allProviders, allowFailed: true, _authenticator);
            case JwtRequirement.RequiresTypeOneofCase.AllowMissing:
                return new AllowMissingVerifier(_allProviders, allowFailed: false, _authenticator);
            default:
                return AllowAllVerifier.Instance;
        }
    }

    private AnyVerifier Any(JwtRequirementOrList any, string where)
    {
        XdsFields.Check(any, where, "requirements");
        RequireTwo(any.Requirements.Count, where);
        bool allowMissing = false, allowFailed = false;
        var children = new List<JwtVerifier>();
        for (var i = 0; i < any.Requirements.Count; i++)
        {
            var child = any.Requirements[i];
            switch (child.RequiresTypeCase)
            {
                case JwtRequirement.RequiresTypeOneofCase.AllowMissing:
                    allowMissing = true;
                    break;
                case JwtRequirement.RequiresTypeOneofCase.AllowMissingOrFailed:
                    allowFailed = true;
                    break;
                default:
                    children.Add(Build(child, $"{where}[{i}]"));
                    break;
            }
        }
        if (children.Count == 0)
        {
            children.Add(new AllowMissingVerifier(_allProviders, allowFailed, _authenticator));
        }
        return new AnyVerifier([.. children], allowMissing, allowFailed);
    }

    private JwtProviderConfig Provider(string name, string where) =>
        _providers.GetValueOrDefault(name) ?? throw new ProxyConfigException($"{where}: Required provider ['{name}'] is not configured; providers: {string.Join(", ", _providers.Keys.Order(StringComparer.Ordinal))}");

    private static void RequireTwo(int count, string where)
    {
        if (count < 2)
        {
            throw new ProxyConfigException($"{where}: needs at least 2 requirements (Envoy's validation); use the requirement itself instead of a list of one");
        }
    }
}
