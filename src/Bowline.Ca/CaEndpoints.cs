using Bowline.Ca.Authentication;
using Bowline.Ca.Grpc;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace Bowline.Ca;

/// <summary>Serves the CA over gRPC as Istio's <c>istio.v1.auth.IstioCertificateService</c> in an ASP.NET Core host that already calls <c>AddGrpc()</c>.</summary>
public static class CaEndpoints
{
    /// <summary>
    /// Registers a CA opened from <paramref name="options"/> (on the container's <see cref="TimeProvider"/>) and, unless
    /// another <see cref="ICallerAuthenticator"/> is registered first (a Kubernetes TokenReview one), the
    /// <see cref="BootstrapTokenStore"/> in the same directory. Resolve <see cref="CertificateAuthority"/> once after
    /// building the host to fail the start, not the first request, on a bad CA directory.
    /// </summary>
    public static IServiceCollection AddIstioCertificateService(this IServiceCollection services, CaOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        services.AddSingleton(sp => CertificateAuthority.Open(options, sp.GetService<TimeProvider>() ?? TimeProvider.System, sp.GetService<ILoggerFactory>()));
        services.TryAddSingleton<ICallerAuthenticator>(sp => BootstrapTokenStore.Open(options.Directory, sp.GetService<TimeProvider>() ?? TimeProvider.System, sp.GetService<ILoggerFactory>()?.CreateLogger<BootstrapTokenStore>()));
        return services;
    }

    /// <summary>Registers an existing CA and authenticator (the host does not own, so does not dispose, them).</summary>
    public static IServiceCollection AddIstioCertificateService(this IServiceCollection services, CertificateAuthority ca, ICallerAuthenticator authenticator)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(ca);
        ArgumentNullException.ThrowIfNull(authenticator);
        services.AddSingleton(ca);
        services.AddSingleton(authenticator);
        return services;
    }

    /// <summary>Maps <c>/istio.v1.auth.IstioCertificateService/CreateCertificate</c>.</summary>
    public static GrpcServiceEndpointConventionBuilder MapIstioCertificateService(this IEndpointRouteBuilder endpoints) =>
        endpoints.MapGrpcService<IstioCertificateServiceImpl>();
}
