using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Security;
using Bowline.ControlPlane.Snapshots;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Listener.V3;
using Envoy.Extensions.Filters.Http.JwtAuthn.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Bowline.ControlPlane.Tests.Security;

/// <summary>The config loop and the resolver together: a policy's keys are fetched before its generation is published, and rotated keys push a new generation.</summary>
public sealed class JwksPushTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bowline-cp-jwks-").FullName;
    private readonly FakeTimeProvider _jwksTime = new();
    private JwksServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await JwksServer.StartAsync();
        _server.Answer("/jwks.json", JwksServer.IstioSampleJwks);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task ConfigWatcher_PublishesFetchedKeys_AndARefreshThatChangesThemPushesANewGeneration()
    {
        File.WriteAllText(Path.Combine(_dir, "services.yaml"), File.ReadAllText(TestFiles.Bookinfo("services.yaml")));
        File.WriteAllText(Path.Combine(_dir, "jwt.yaml"), $"""
            apiVersion: security.istio.io/v1
            kind: RequestAuthentication
            metadata: {"{"}name: jwt-example, namespace: default{"}"}
            spec:
              jwtRules:
              - issuer: testing@secure.istio.io
                jwksUri: {_server.Url("/jwks.json")}
            """);
        using var source = new DirectoryConfigSource([_dir], NullLogger<DirectoryConfigSource>.Instance);
        var mesh = new MeshState(NullLogger<MeshState>.Instance);
        using var resolver = new JwksResolver(_jwksTime, NullLogger<JwksResolver>.Instance);
        // The loop's debounce on the real clock (it is not what is tested); the resolver's schedule on the fake one.
        var options = new ControlPlaneOptions { Debounce = TimeSpan.FromMilliseconds(10) };
        using var watcher = new ConfigWatcher(source, mesh, options, TimeProvider.System, resolver, NullLogger<ConfigWatcher>.Instance);
        await watcher.StartAsync(TestTimeouts.Token());
        try
        {
            await mesh.WaitForChangeAsync(0, TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);
            var first = mesh.Current;
            Assert.Equal(JwksServer.IstioSampleJwks, InlineKeys(first));

            _server.Answer("/jwks.json", JwksServer.RotatedJwks);
            _jwksTime.Advance(TimeSpan.FromMinutes(20));
            await mesh.WaitForChangeAsync(first.Config.Generation, TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);

            Assert.True(mesh.Current.Config.Generation > first.Config.Generation);
            Assert.Same(first.Config.Resources, mesh.Current.Config.Resources);
            Assert.Equal(JwksServer.RotatedJwks, InlineKeys(mesh.Current));
        }
        finally
        {
            await watcher.StopAsync(TestTimeouts.Token());
        }
    }

    private static string InlineKeys(Bowline.ControlPlane.Registry.ServiceIndex index)
    {
        var snapshot = MeshTranslator.Translate(index, ProxyNode.From(TestNodes.ProductpageSidecar()));
        var listener = Assert.IsType<Listener>(snapshot.Get(TypeUrls.Listener)!.Resources[IstioNames.VirtualInbound].Message);
        var hcm = listener.FilterChains.Single().Filters.Single().TypedConfig.Unpack<HttpConnectionManager>();
        return hcm.HttpFilters.Single(f => f.Name == "envoy.filters.http.jwt_authn").TypedConfig.Unpack<JwtAuthentication>().Providers["origins-0"].LocalJwks.InlineString;
    }
}
