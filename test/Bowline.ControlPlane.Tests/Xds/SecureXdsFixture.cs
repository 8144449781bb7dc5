using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Bowline.Ca;
using Bowline.Ca.Grpc.V1;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Tests.Translation;
using Envoy.Service.Discovery.V3;
using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;

namespace Bowline.ControlPlane.Tests.Xds;

/// <summary>
/// A control plane with its CA and the TLS xDS port on loopback port 0, over bookinfo, and clients that dial that
/// port with whatever client certificate a test gives them, verifying the server as a proxy does.
/// </summary>
internal sealed class SecureXdsFixture : IAsyncDisposable
{
    private readonly List<GrpcChannel> _channels = [];

    private SecureXdsFixture(string configDirectory, string caDirectory, ControlPlaneHost host, TimeProvider time)
    {
        ConfigDirectory = configDirectory;
        CaDirectory = caDirectory;
        Host = host;
        Time = time;
    }

    public string ConfigDirectory { get; }

    public string CaDirectory { get; }

    public ControlPlaneHost Host { get; }

    public TimeProvider Time { get; }

    public CertificateAuthority Ca => Host.Services.GetRequiredService<CertificateAuthority>();

    public static async Task<SecureXdsFixture> StartAsync(TimeProvider? time = null, bool plaintext = true, TimeSpan? servingTtl = null)
    {
        time ??= TimeProvider.System;
        var config = Directory.CreateTempSubdirectory("bowline-cp-secure-").FullName;
        var ca = Directory.CreateTempSubdirectory("bowline-cp-secure-ca-").FullName;
        await File.WriteAllTextAsync(Path.Combine(config, "services.yaml"), File.ReadAllText(TestFiles.Bookinfo("services.yaml"))).WaitAsync(TestTimeouts.Default);
        await File.WriteAllTextAsync(Path.Combine(config, "workload-entries.yaml"), Bookinfo.SidecarWorkloadEntries).WaitAsync(TestTimeouts.Default);
        var host = ControlPlaneHost.Create(new ControlPlaneOptions
        {
            ConfigDirectories = [config],
            XdsPort = 0,
            PlaintextXds = plaintext,
            SecureXdsPort = 0,
            MonitoringPort = 0,
            Debounce = TimeSpan.FromMilliseconds(20),
            Ca = new CaOptions { Directory = ca },
            MeshMtls = true,
            ServingCertificateTtl = servingTtl ?? TimeSpan.FromHours(24),
        }, time: time);
        await host.StartAsync(TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);
        await host.Mesh.WaitForChangeAsync(0, TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);
        return new SecureXdsFixture(config, ca, host, time);
    }

    /// <summary>A workload certificate for <paramref name="serviceAccount"/> in <paramref name="ns"/>, issued by this control plane's CA, with its key.</summary>
    public X509Certificate2 WorkloadCertificate(string serviceAccount, string ns = "default")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var chain = Ca.Sign(Csr(key, $"spiffe://cluster.local/ns/{ns}/sa/{serviceAccount}"), new WorkloadIdentity(ns, serviceAccount));
        using var leaf = X509Certificate2.CreateFromPem(chain[0]);
        return leaf.CopyWithPrivateKey(key);
    }

    public static string Csr(ECDsa key, string spiffeId)
    {
        var request = new CertificateRequest(new X500DistinguishedName(""), key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(spiffeId));
        request.CertificateExtensions.Add(san.Build(critical: true));
        return request.CreateSigningRequestPem();
    }

    /// <summary>A channel to the TLS port that presents <paramref name="clientCertificate"/> (none when null) and verifies the server by the mesh root and istiod's name.</summary>
    public GrpcChannel SecureChannel(X509Certificate2? clientCertificate)
    {
        var roots = new X509Certificate2Collection();
        foreach (var root in Ca.TrustBundle.Roots)
        {
            roots.Add(root);
        }
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            SslOptions = new SslClientAuthenticationOptions
            {
                LocalCertificateSelectionCallback = (_, _, _, _, _) => clientCertificate!,
                RemoteCertificateValidationCallback = (_, presented, _, _) => VerifyServer(presented, roots),
            },
        };
        var channel = GrpcChannel.ForAddress(Host.SecureXdsAddress!, new GrpcChannelOptions { HttpHandler = handler });
        _channels.Add(channel);
        return channel;
    }

    /// <summary>The serving certificate each new handshake saw, last first.</summary>
    public List<X509Certificate2> ServerCertificatesSeen { get; } = [];

    private bool VerifyServer(X509Certificate? presented, X509Certificate2Collection roots)
    {
        if (presented is null)
        {
            return false;
        }
        var leaf = X509CertificateLoader.LoadCertificate(presented.GetRawCertData());
        lock (ServerCertificatesSeen)
        {
            ServerCertificatesSeen.Insert(0, leaf);
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = Time.GetUtcNow().UtcDateTime;
        return chain.Build(leaf) && leaf.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().EnumerateDnsNames().Contains("istiod.istio-system.svc");
    }

    public AdsTestClient ConnectAds(GrpcChannel channel) =>
        new(new AggregatedDiscoveryService.AggregatedDiscoveryServiceClient(channel).StreamAggregatedResources(cancellationToken: TestTimeouts.Token()));

    public IstioCertificateService.IstioCertificateServiceClient CaClient(GrpcChannel channel) => new(channel);

    public async ValueTask DisposeAsync()
    {
        foreach (var channel in _channels)
        {
            channel.Dispose();
        }
        await Host.StopAsync(TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);
        await Host.DisposeAsync().AsTask().WaitAsync(TestTimeouts.Default);
        Directory.Delete(ConfigDirectory, recursive: true);
        Directory.Delete(CaDirectory, recursive: true);
    }
}
