using System.Net;
using Bowline.Ca.Authentication;
using Bowline.Ca.Grpc.V1;
using Bowline.Ca.Tests.Infrastructure;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Bowline.Ca.Tests.Grpc;

/// <summary>The wiring a control plane uses: the CA and token store opened from options inside the host's container.</summary>
public sealed class CaEndpointsTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task AddIstioCertificateService_FromOptions_ServesTokensIssuedIntoTheDirectoryByAnotherProcess()
    {
        using var directory = new TemporaryDirectory();
        var time = new FakeTimeProvider(TestCa.Start);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Services.AddSingleton<TimeProvider>(time);
        builder.Services.AddGrpc();
        builder.Services.AddIstioCertificateService(new CaOptions { Directory = directory.Path, TrustDomain = "mesh.test" });
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        await using var app = builder.Build();
        var ca = app.Services.GetRequiredService<CertificateAuthority>();
        Assert.IsType<BootstrapTokenStore>(app.Services.GetRequiredService<ICallerAuthenticator>());
        app.MapIstioCertificateService();
        await app.StartAsync().WaitAsync(Timeout);
        try
        {
            // What bowline up does: issue a token into the CA directory, hand it to the sidecar.
            var token = BootstrapTokenStore.Open(directory.Path, time).Issue(TestCa.Reviews);
            using var channel = GrpcChannel.ForAddress(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
            var client = new IstioCertificateService.IstioCertificateServiceClient(channel);

            var response = await client.CreateCertificateAsync(
                new IstioCertificateRequest { Csr = TestCa.Csr("spiffe://mesh.test/ns/default/sa/bookinfo-reviews") },
                new Metadata { { "authorization", "Bearer " + token } }, deadline: DateTime.UtcNow + Timeout);

            using var leaf = TestCa.Load(response.CertChain[0]);
            Assert.True(TestCa.Verify(leaf, ca.TrustBundle.Roots, TestCa.Start).Valid);
            Assert.Equal(TestCa.Start.AddHours(24), new DateTimeOffset(leaf.NotAfter.ToUniversalTime()));
        }
        finally
        {
            await app.StopAsync().WaitAsync(Timeout);
        }
    }
}
