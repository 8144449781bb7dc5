namespace Bowline.ControlPlane.Config;

/// <summary>Identity shared by every config object: kind, namespace/name, and where it came from.</summary>
internal sealed record ResourceMeta(string Kind, string Name, string Namespace, IReadOnlyDictionary<string, string> Labels, string File, int Line)
{
    public string Key => $"{Kind}/{Namespace}/{Name}";

    /// <summary><c>metadata.creationTimestamp</c>, when given: Istio's "oldest wins" between policies of the same scope.</summary>
    public DateTimeOffset? CreationTimestamp { get; init; }

    /// <summary><c>metadata.annotations</c>: Istio reads a few (AuthorizationPolicy's <c>istio.io/dry-run</c>).</summary>
    public IReadOnlyDictionary<string, string> Annotations { get; init; } = new Dictionary<string, string>();

    public override string ToString() => $"{Kind} {Namespace}/{Name}";
}

/// <summary>A parsed, field-validated config object.</summary>
internal abstract record MeshResource(ResourceMeta Meta);
