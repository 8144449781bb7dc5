namespace Bowline.ControlPlane.Config;

/// <summary>What a <see cref="HealthCheck"/> sends to an endpoint to judge it.</summary>
internal abstract record HealthProbe;

/// <summary>An HTTP GET of <paramref name="Path"/>; healthy when the status is in one of the ranges (both ends inclusive, as written in YAML).</summary>
/// <param name="Host">The Host header to send; null: the cluster's name, as Envoy does.</param>
internal sealed record HttpHealthProbe(string Path, string? Host, IReadOnlyList<(int Start, int End)> ExpectedStatuses) : HealthProbe;

/// <summary>The gRPC health checking protocol (<c>grpc.health.v1.Health/Check</c>); an empty service name asks about the whole server.</summary>
internal sealed record GrpcHealthProbe(string ServiceName) : HealthProbe;

/// <summary>A TCP connect: healthy when the connection opens.</summary>
internal sealed record TcpHealthProbe : HealthProbe;

/// <summary>
/// <c>bowline.dev/v1alpha1 HealthCheck</c>: active health checking of a service's endpoints (Istio needs an
/// EnvoyFilter for it). Applies to the service's outbound clusters: every subset unless <see cref="Subset"/> is given,
/// every HTTP port unless <see cref="Port"/> is.
/// </summary>
/// <param name="Host">The service host as written (qualified against the resource's namespace, as a DestinationRule's).</param>
internal sealed record HealthCheck(ResourceMeta Meta, string Host, string? Subset, int? Port, HealthProbe Probe) : MeshResource(Meta)
{
    /// <summary>Kubernetes probe defaults, which operators already know: every 10 s, 1 s timeout, 3 failures, 1 success.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(10);

    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>A random extra delay of up to this much per interval, so checks from many proxies spread out.</summary>
    public TimeSpan IntervalJitter { get; init; } = TimeSpan.Zero;

    public int HealthyThreshold { get; init; } = 1;

    public int UnhealthyThreshold { get; init; } = 3;
}

/// <summary>
/// <c>bowline.dev/v1alpha1 RateLimit</c>: a local (per proxy) token bucket on the calls to a service, answered with
/// <see cref="StatusCode"/> when empty. Applies to the routes of the service's virtual host on every sidecar; with
/// <see cref="Matches"/>, only to requests whose path matches one of them.
/// <see cref="Bucket"/> is each calling sidecar's own bucket (null when the RateLimit has only <see cref="PerSource"/>).
/// </summary>
internal sealed record RateLimit(ResourceMeta Meta, string Host, int? Port, IReadOnlyList<StringMatch> Matches, TokenBucketSettings? Bucket) : MeshResource(Meta)
{
    public int StatusCode { get; init; } = 429;

    /// <summary>The limit the service's own sidecars enforce per calling mesh identity; null when none.</summary>
    public PerSourceLimit? PerSource { get; init; }

    public IReadOnlyList<(string Name, string Value)> ResponseHeaders { get; init; } = [];
}

/// <summary>
/// A RateLimit's <c>perSource</c>: at each of the service's sidecars, every calling mesh identity has a bucket of its
/// own, of <paramref name="Bucket"/>'s size or its override's (<paramref name="Overrides"/>, keyed by Istio principal
/// <c>trust-domain/ns/NS/sa/SA</c>); callers without a mesh identity share one bucket of <paramref name="Bucket"/>'s size.
/// </summary>
internal sealed record PerSourceLimit(TokenBucketSettings Bucket, IReadOnlyList<(string Principal, TokenBucketSettings Bucket)> Overrides);

/// <summary>Envoy's token bucket: starts full with <paramref name="MaxTokens"/>, gains <paramref name="TokensPerFill"/> every <paramref name="FillInterval"/>; each request takes one.</summary>
internal sealed record TokenBucketSettings(int MaxTokens, int TokensPerFill, TimeSpan FillInterval);
