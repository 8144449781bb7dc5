using System.Net;
using Bowline.Ca.Authentication;
using Bowline.Ca.Grpc;
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

namespace Bowline.Ca.Tests.Grpc;

/// <summary>The real service: Kestrel on 127.0.0.1 port 0, h2c, a Grpc.Net.Client channel, Istio's message shapes.</summary>
public sealed class IstioCertificateServiceTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly TestCa _ca = new();
    private BootstrapTokenStore _tokens = null!;
    private WebApplication _app = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        _tokens = BootstrapTokenStore.Open(_ca.Directory.Path, _ca.Time);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Services.AddGrpc();
        builder.Services.AddIstioCertificateService(_ca.Ca, _tokens);
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        _app = builder.Build();
        _app.MapIstioCertificateService();
        await _app.StartAsync().WaitAsync(Timeout);
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        _channel = GrpcChannel.ForAddress(address);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _app.StopAsync().WaitAsync(Timeout);
        await _app.DisposeAsync();
        _ca.Dispose();
    }

    [Fact]
    public async Task CreateCertificate_AuthenticatedCsr_ReturnsLeafAndRootWithRequestedTtl()
    {
        var token = _tokens.Issue(TestCa.Reviews);
        var client = new IstioCertificateService.IstioCertificateServiceClient(_channel);

        var response = await client.CreateCertificateAsync(
            new IstioCertificateRequest { Csr = TestCa.Csr(_ca.SpiffeId(TestCa.Reviews)), ValidityDuration = 3600, Metadata = new() },
            Headers(token), deadline: DateTime.UtcNow + Timeout);

        Assert.Equal(2, response.CertChain.Count);
        using var leaf = TestCa.Load(response.CertChain[0]);
        Assert.Equal([(6, "spiffe://cluster.local/ns/default/sa/bookinfo-reviews")], TestCa.SanNames(leaf));
        Assert.Equal(TestCa.Start.AddHours(1), new DateTimeOffset(leaf.NotAfter.ToUniversalTime()));
        var (valid, status, _) = TestCa.Verify(leaf, TestCa.LoadAll(response.CertChain[^1]).ToArray(), TestCa.Start);
        Assert.True(valid, status);
    }

    [Fact]
    public async Task CreateCertificate_UnknownToken_IsUnauthenticated()
    {
        _tokens.Issue(TestCa.Reviews);
        var client = new IstioCertificateService.IstioCertificateServiceClient(_channel);

        var e = await Assert.ThrowsAsync<RpcException>(() => client.CreateCertificateAsync(
            new IstioCertificateRequest { Csr = TestCa.Csr(_ca.SpiffeId(TestCa.Reviews)) }, Headers("forged"), deadline: DateTime.UtcNow + Timeout).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
        Assert.Contains("not one this control plane issued", e.Status.Detail, StringComparison.Ordinal);
        var missing = await Assert.ThrowsAsync<RpcException>(() => client.CreateCertificateAsync(
            new IstioCertificateRequest { Csr = TestCa.Csr(_ca.SpiffeId(TestCa.Reviews)) }, deadline: DateTime.UtcNow + Timeout).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, missing.StatusCode);
    }

    [Fact]
    public async Task CreateCertificate_CsrForAnotherIdentity_IsPermissionDenied()
    {
        var token = _tokens.Issue(TestCa.Reviews);
        var client = new IstioCertificateService.IstioCertificateServiceClient(_channel);

        var e = await Assert.ThrowsAsync<RpcException>(() => client.CreateCertificateAsync(
            new IstioCertificateRequest { Csr = TestCa.Csr(_ca.SpiffeId(TestCa.Ratings)) }, Headers(token), deadline: DateTime.UtcNow + Timeout).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
        Assert.Contains("can only be issued its own identity", e.Status.Detail, StringComparison.Ordinal);
        var malformed = await Assert.ThrowsAsync<RpcException>(() => client.CreateCertificateAsync(
            new IstioCertificateRequest { Csr = "nonsense" }, Headers(token), deadline: DateTime.UtcNow + Timeout).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, malformed.StatusCode);
    }

    [Theory]
    [InlineData(CertificateRequestRefusal.MalformedCsr, StatusCode.InvalidArgument)]
    [InlineData(CertificateRequestRefusal.UnsupportedKey, StatusCode.InvalidArgument)]
    [InlineData(CertificateRequestRefusal.InvalidIdentity, StatusCode.InvalidArgument)]
    [InlineData(CertificateRequestRefusal.IdentityMismatch, StatusCode.PermissionDenied)]
    [InlineData(CertificateRequestRefusal.RateLimited, StatusCode.ResourceExhausted)]
    [InlineData(CertificateRequestRefusal.SignerExpired, StatusCode.FailedPrecondition)]
    public void StatusCodeOf_Refusal_MapsToGrpcStatus(CertificateRequestRefusal refusal, StatusCode expected) =>
        Assert.Equal(expected, IstioCertificateServiceImpl.StatusCodeOf(refusal));

    private static Metadata Headers(string token) => new() { { "authorization", "Bearer " + token } };
}
