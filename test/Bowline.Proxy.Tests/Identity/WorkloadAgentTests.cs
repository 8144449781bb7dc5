using System.Net;
using System.Security.Cryptography.X509Certificates;
using Bowline.Ca;
using Bowline.Ca.Authentication;
using Bowline.Proxy.Identity;
using Bowline.Proxy.Stats;
using Bowline.Proxy.Tests.Infrastructure;
using Bowline.Proxy.Tls;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Bowline.Proxy.Tests.Identity;

/// <summary>The proxy's identity agent against the real CA over gRPC: key generated locally, CSR, SDS secrets, renewal at half life.</summary>
public sealed class WorkloadAgentTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("bowline-ca-").FullName;
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private WebApplication? _ca;
    private Uri? _address;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<TimeProvider>(_time);
        builder.Services.AddGrpc();
        builder.Services.AddIstioCertificateService(new CaOptions { Directory = _directory });
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        _ca = builder.Build();
        _ca.MapIstioCertificateService();
        await _ca.StartAsync().WaitAsync(Timeouts.Default);
        _address = new Uri(_ca.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
    }

    public async Task DisposeAsync()
    {
        await _ca!.StopAsync().WaitAsync(Timeouts.Default);
        await _ca.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    private (WorkloadAgent Agent, SecretStore Secrets, ProxyStats Stats) Agent(string? token)
    {
        var options = new ProxyOptions
        {
            NodeId = "sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local",
            WorkloadName = "reviews-v1",
            Namespace = "default",
            ServiceAccount = "bookinfo-reviews",
            XdsAddress = new Uri("http://127.0.0.1:1"),
            CaAddress = _address,
            CaToken = token,
        };
        var secrets = new SecretStore();
        var stats = new ProxyStats();
        return (new WorkloadAgent(options, secrets, stats, _time, new Random(42), NullLogger<WorkloadAgent>.Instance), secrets, stats);
    }

    private string Token() => BootstrapTokenStore.Open(_directory, _time).Issue(new WorkloadIdentity("default", "bookinfo-reviews"));

    [Fact]
    public async Task Start_WithItsToken_HoldsAnSvidForItsIdentityAndTheTrustBundle()
    {
        var (agent, secrets, stats) = Agent(Token());
        await using (agent)
        {
            await agent.StartAsync(Timeouts.Token());

            var secret = secrets.Certificate(WorkloadAgent.CertificateSecretName)!;
            Assert.Equal(["spiffe://cluster.local/ns/default/sa/bookinfo-reviews"], SpiffeId.SubjectAltNames(secret.Leaf).Uris);
            Assert.True(secret.Leaf.HasPrivateKey);
            Assert.Equal(256, secret.Leaf.GetECDsaPublicKey()!.KeySize);
            var roots = secrets.TrustBundle(WorkloadAgent.TrustBundleSecretName)!;
            var root = Assert.Single(roots);
            using var chain = new X509Chain { ChainPolicy = { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck, VerificationTime = _time.GetUtcNow().UtcDateTime } };
            chain.ChainPolicy.CustomTrustStore.Add(root);
            Assert.True(chain.Build(secret.Leaf));
            Assert.Equal(1, stats.ValueOf("bowline.agent.certificates_issued"));
        }
    }

    [Fact]
    public async Task HalfLife_Passes_RenewsWithANewKeyAndSerial()
    {
        var (agent, secrets, stats) = Agent(Token());
        await using (agent)
        {
            await agent.StartAsync(Timeouts.Token());
            var first = secrets.Certificate(WorkloadAgent.CertificateSecretName)!.Leaf;

            _time.Advance(TimeSpan.FromHours(12) + TimeSpan.FromMinutes(1));
            await secrets.WaitUntilAsync(s => s.Certificate(WorkloadAgent.CertificateSecretName)!.Leaf.SerialNumber != first.SerialNumber, Timeouts.Token());

            var renewed = secrets.Certificate(WorkloadAgent.CertificateSecretName)!.Leaf;
            Assert.NotEqual(first.GetPublicKeyString(), renewed.GetPublicKeyString());
            Assert.Equal(2, stats.ValueOf("bowline.agent.certificates_issued"));
        }
    }

    [Fact]
    public async Task NoToken_AgentStaysOff()
    {
        var (agent, secrets, _) = Agent(token: null);
        await using (agent)
        {
            await agent.StartAsync(Timeouts.Token());

            Assert.False(agent.Enabled);
            Assert.Null(secrets.Certificate(WorkloadAgent.CertificateSecretName));
        }
    }
}
