namespace Bowline.Samples.Bookinfo.Hosting;

/// <summary>One bookinfo service: what it registers and which routes it serves.</summary>
internal interface IRole
{
    /// <summary>The name given as the first argument, e.g. <c>reviews</c>.</summary>
    string Name { get; }

    /// <summary>The <c>status</c> of <c>GET /health</c>, worded as Istio's service words it.</summary>
    string HealthStatus { get; }

    /// <summary>Reads the role's environment and registers its services; throws
    /// <see cref="StartupException"/> when the environment is unusable.</summary>
    void AddServices(IServiceCollection services);

    void MapEndpoints(IEndpointRouteBuilder endpoints);
}
