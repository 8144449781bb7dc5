namespace Bowline.Samples.Bookinfo.Upstreams;

internal static class UpstreamServiceCollectionExtensions
{
    /// <summary>Registers the shared <see cref="UpstreamClient"/> for roles that call others.</summary>
    public static IServiceCollection AddUpstreams(this IServiceCollection services) =>
        services.AddSingleton(provider => new UpstreamClient(
            UpstreamHttpClient.Create(),
            provider.GetRequiredService<ILogger<UpstreamClient>>()));
}
