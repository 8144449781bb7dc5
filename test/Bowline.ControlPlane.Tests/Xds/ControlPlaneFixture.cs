using Bowline.ControlPlane.Tests.Infrastructure;
using Envoy.Service.Discovery.V3;
using Grpc.Net.Client;

namespace Bowline.ControlPlane.Tests.Xds;

/// <summary>A real control plane on loopback port 0, watching its own temporary config directory, with a gRPC channel to it.</summary>
internal sealed class ControlPlaneFixture : IAsyncDisposable
{
    private ControlPlaneFixture(string configDirectory, ControlPlaneHost host, GrpcChannel channel)
    {
        ConfigDirectory = configDirectory;
        Host = host;
        Channel = channel;
        Client = new AggregatedDiscoveryService.AggregatedDiscoveryServiceClient(channel);
    }

    public string ConfigDirectory { get; }

    public ControlPlaneHost Host { get; }

    public GrpcChannel Channel { get; }

    public AggregatedDiscoveryService.AggregatedDiscoveryServiceClient Client { get; }

    /// <summary>Starts a control plane on the given files and waits until it has published their first generation.</summary>
    public static Task<ControlPlaneFixture> StartAsync(params (string File, string Yaml)[] files) => StartAsync(meshMtls: false, files);

    /// <summary>The same, with <see cref="ControlPlaneOptions.MeshMtls"/> set as given.</summary>
    public static async Task<ControlPlaneFixture> StartAsync(bool meshMtls, params (string File, string Yaml)[] files)
    {
        var dir = Directory.CreateTempSubdirectory("bowline-cp-ads-").FullName;
        foreach (var (file, yaml) in files)
        {
            await File.WriteAllTextAsync(Path.Combine(dir, file), yaml).WaitAsync(TestTimeouts.Default);
        }
        var host = ControlPlaneHost.Create(new ControlPlaneOptions { ConfigDirectories = [dir], XdsPort = 0, MonitoringPort = 0, Debounce = TimeSpan.FromMilliseconds(20), MeshMtls = meshMtls });
        await host.StartAsync(TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);
        await host.Mesh.WaitForChangeAsync(0, TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);
        // As large as what a proxy accepts, so a test of a large config fails on the server, not on this client's default 4 MB.
        return new ControlPlaneFixture(dir, host, GrpcChannel.ForAddress(host.XdsAddress, new GrpcChannelOptions { MaxReceiveMessageSize = 64 * 1024 * 1024 }));
    }

    public AdsTestClient Connect() => new(Client.StreamAggregatedResources(cancellationToken: TestTimeouts.Token()));

    /// <summary>
    /// Writes a config file atomically (written beside it under a name the watcher ignores, then renamed), so the
    /// watcher never reads half a file, and waits until the control plane has published the new generation.
    /// </summary>
    public async Task WriteConfigAsync(string file, string yaml)
    {
        var generation = Host.Mesh.Current.Config.Generation;
        var temporary = Path.Combine(ConfigDirectory, $".{file}.tmp");
        await File.WriteAllTextAsync(temporary, yaml).WaitAsync(TestTimeouts.Default);
        File.Move(temporary, Path.Combine(ConfigDirectory, file), overwrite: true);
        await Host.Mesh.WaitForChangeAsync(generation, TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await Host.StopAsync(TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);
        await Host.DisposeAsync().AsTask().WaitAsync(TestTimeouts.Default);
        Directory.Delete(ConfigDirectory, recursive: true);
    }
}
