namespace Bowline.ControlPlane.Config;

/// <summary>
/// An Istio <c>security.istio.io/v1 RequestAuthentication</c>: the JWTs the sidecars (or gateways) of the selected
/// workloads validate. A request with a token that fails validation is rejected (401); a request without a token is let
/// through, for an AuthorizationPolicy to decide. Without a selector it covers its namespace, and in the root namespace
/// (<see cref="MeshSecurity.RootNamespace"/>) the whole mesh; every policy that applies to a workload adds its rules
/// (<see cref="RequestAuthenticationPolicies"/>).
/// </summary>
/// <param name="Selector"><c>selector.matchLabels</c>; empty for a namespace-wide or mesh-wide policy.</param>
/// <param name="TargetRefs"><c>targetRefs</c> (or the legacy <c>targetRef</c>): Kubernetes Gateway API gateways the policy binds to instead of a selector.</param>
/// <param name="JwtRules"><c>jwtRules</c>, in order.</param>
internal sealed record RequestAuthentication(
    ResourceMeta Meta,
    IReadOnlyDictionary<string, string> Selector,
    IReadOnlyList<PolicyTargetRef> TargetRefs,
    IReadOnlyList<JwtRule> JwtRules) : MeshResource(Meta);

/// <summary>A <c>PolicyTargetReference</c>: a resource a policy attaches to by name, in the policy's own namespace.</summary>
/// <param name="Group">The API group; empty for the core group (a Kubernetes Service).</param>
internal sealed record PolicyTargetRef(string Group, string Kind, string Name)
{
    /// <summary>The group of Kubernetes Gateway API resources, which is what a gateway's targetRef names.</summary>
    public const string GatewayApiGroup = "gateway.networking.k8s.io";

    public override string ToString() => Group.Length == 0 ? $"{Kind}/{Name}" : $"{Group}/{Kind}/{Name}";
}
