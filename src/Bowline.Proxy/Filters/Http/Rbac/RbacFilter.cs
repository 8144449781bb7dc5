using Bowline.Proxy.Filters.Common.Rbac;
using Bowline.Proxy.Http;
using Microsoft.AspNetCore.Http;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.Proxy.Filters.Http.Rbac;

/// <summary>
/// Envoy's RBAC filter at request time: the shadow rules are evaluated and recorded (counters and dynamic metadata),
/// then the enforced rules decide. A refused request is answered 403 <c>RBAC: access denied</c> with the deciding
/// policy in the response code details (<c>rbac_access_denied_matched_policy[...]</c>), as Envoy answers.
/// </summary>
internal sealed class RbacFilter(string name, RbacRules rules, RbacStats stats) : IHttpFilter
{
    /// <summary>The dynamic-metadata namespace Envoy records RBAC results under.</summary>
    public const string MetadataNamespace = "envoy.filters.http.rbac";

    public string Name => name;

    public async ValueTask<FilterStatus> OnRequestAsync(HttpStream stream)
    {
        var active = stream.FilterConfig<RbacRules>(name) ?? rules;
        var input = new RbacInput(stream);
        if (active.Shadow is { } shadow)
        {
            var (allowed, policy) = shadow.Decide(input);
            (allowed ? stats.ShadowAllowed : stats.ShadowDenied).Increment();
            var metadata = stream.WritableMetadata;
            metadata.Set(MetadataNamespace, active.ShadowPrefix + "shadow_engine_result", Value.ForString(allowed ? "allowed" : "denied"));
            if (policy is not null)
            {
                metadata.Set(MetadataNamespace, active.ShadowPrefix + "shadow_effective_policy_id", Value.ForString(policy));
            }
        }
        if (active.Rules is not { } enforced)
        {
            return FilterStatus.Continue;
        }
        var (pass, decidedBy) = enforced.Decide(input);
        if (enforced.Action == RbacAction.Log)
        {
            // Envoy's LOG action lets everything through and tells the access log which requests matched.
            stream.WritableMetadata.Set("envoy.common", "access_log_hint", Value.ForBool(decidedBy is not null));
        }
        if (pass)
        {
            stats.Allowed.Increment();
            return FilterStatus.Continue;
        }
        stats.Denied.Increment();
        await stream.SendLocalReplyAsync(StatusCodes.Status403Forbidden, "RBAC: access denied", ResponseFlags.None,
            $"rbac_access_denied_matched_policy[{decidedBy ?? "none"}]").ConfigureAwait(false);
        return FilterStatus.Stop;
    }
}
