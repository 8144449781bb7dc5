namespace Bowline.ControlPlane.Config;

/// <summary>
/// Why a new generation is pushed, as Istio's <c>pilot_push_triggers</c> types it: what changed between the last
/// published config and this one. A file that was re-read counts as changed, whether or not its content differs.
/// </summary>
internal static class PushTrigger
{
    /// <summary>Routing, policy and telemetry config (VirtualService, DestinationRule, AuthorizationPolicy, the mesh config, ...).</summary>
    public const string Config = "config";

    /// <summary>The registry's services (Kubernetes Services, ServiceEntries).</summary>
    public const string Service = "service";

    /// <summary>Workloads (WorkloadEntries, Bowline Workloads): endpoints.</summary>
    public const string Endpoint = "endpoint";

    /// <summary>Key material: gateway credential Secrets, fetched JWKS.</summary>
    public const string Secret = "secret";

    /// <summary>The triggers of going from <paramref name="before"/> to <paramref name="after"/>; JWKS changes alone are a secret push.</summary>
    public static IReadOnlySet<string> Between(MeshConfig? before, MeshConfig after, bool keysChanged)
    {
        var triggers = new HashSet<string>(StringComparer.Ordinal);
        if (keysChanged)
        {
            triggers.Add(Secret);
        }
        var old = new HashSet<MeshResource>(before?.Resources ?? [], ReferenceEqualityComparer.Instance);
        var now = new HashSet<MeshResource>(after.Resources, ReferenceEqualityComparer.Instance);
        foreach (var changed in after.Resources.Where(r => !old.Contains(r)).Concat(before?.Resources.Where(r => !now.Contains(r)) ?? []))
        {
            triggers.Add(Of(changed));
        }
        return triggers;
    }

    private static string Of(MeshResource resource) => resource switch
    {
        KubernetesService or ServiceEntry => Service,
        WorkloadEntry or Workload => Endpoint,
        CredentialSecret => Secret,
        _ => Config,
    };
}
