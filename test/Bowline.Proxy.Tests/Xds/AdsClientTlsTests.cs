using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;
using Bowline.Proxy.Identity;
using Bowline.Proxy.Tests.Infrastructure;
using Bowline.Proxy.Tls;
using Envoy.Service.Discovery.V3;
using Grpc.Core;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Bowline.Proxy.Tests.Xds;

/// <summary>
/// ADS over mutual TLS to a scripted control plane: the proxy verifies the server by the mesh root and istiod's name,
/// and every new connection presents the workload certificate the secret store holds at that moment.
/// </summary>
public sealed class AdsClientTlsTests : IAsyncLifetime
{
    private readonly X509Certificate2 _root = TestPki.Root();
    private readonly Channel<(string? Serial, TaskCompletionSource<Action<ServerCallContext>> Verdict)> _streams = Channel.CreateUnbounded<(string?, TaskCompletionSource<Action<ServerCallContext>>)>();
    private WebApplication? _server;
    private Uri? _address;

    public async Task InitializeAsync()
    {
        var serving = TestPki.Leaf(_root, [], dnsNames: ["istiod.istio-system.svc"]);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(_streams);
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l =>
        {
            l.Protocols = HttpProtocols.Http2;
            l.UseHttps(new HttpsConnectionAdapterOptions
            {
                ServerCertificate = serving,
                ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                ClientCertificateValidation = (_, _, _) => true,
            });
        }));
        _server = builder.Build();
        _server.MapGrpcService<RecordingAds>();
        await _server.StartAsync().WaitAsync(Timeouts.Default);
        _address = new Uri(_server.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
    }

    public async Task DisposeAsync()
    {
        await _server!.StopAsync().WaitAsync(Timeouts.Default);
        await _server.DisposeAsync();
    }

    private ProxyHost Proxy(X509Certificate2 root) => ProxyHost.Create(new ProxyOptions
    {
        NodeId = RunningProxy.NodeId,
        WorkloadName = "reviews-v1",
        Namespace = "bookinfo",
        ServiceAccount = "bookinfo-reviews",
        XdsAddress = _address!,
        ControlPlaneRootsPem = root.ExportCertificatePem(),
        AdminPort = 0,
        InitialBackoff = RunningProxy.InitialBackoff,
        MaxBackoff = RunningProxy.MaxBackoff,
        DrainTimeout = TimeSpan.FromSeconds(1),
    }, random: new Random(42));

    private X509Certificate2 Workload() => TestPki.Leaf(_root, [TestPki.Spiffe("bookinfo-reviews", "bookinfo")]);

    private static void Present(ProxyHost host, X509Certificate2 certificate) =>
        host.Services.GetRequiredService<SecretStore>().SetCertificate(WorkloadAgent.CertificateSecretName, new CertificateSecret(certificate, []));

    private async Task<(string? Serial, TaskCompletionSource<Action<ServerCallContext>> Verdict)> NextStreamAsync() =>
        await _streams.Reader.ReadAsync().AsTask().WaitAsync(Timeouts.Default);

    [Fact]
    public async Task RunAsync_CertificateRotated_TheNextConnectionPresentsTheNewOne()
    {
        var first = Workload();
        var rotated = Workload();
        await using var host = Proxy(_root);
        Present(host, first);
        await host.StartAsync(Timeouts.Token()).WaitAsync(Timeouts.Default);

        var stream = await NextStreamAsync();
        Assert.Equal(first.SerialNumber, stream.Serial);

        // The agent renews; then the connection breaks (a control plane restart, a network blip).
        Present(host, rotated);
        stream.Verdict.SetResult(context =>
        {
            // GOAWAY for the connection, then end the stream: the client must open a new connection to go on.
            context.GetHttpContext().Features.Get<IConnectionLifetimeNotificationFeature>()!.RequestClose();
            context.GetHttpContext().Abort();
        });
        var next = await NextStreamAsync();

        Assert.Equal(rotated.SerialNumber, next.Serial);
        next.Verdict.SetResult(_ => { });
        await host.StopAsync().WaitAsync(Timeouts.Default);
    }

    [Fact]
    public async Task RunAsync_Refused_CountsItAndRetriesOnAFreshConnectionWithTheCurrentCertificate()
    {
        var wrong = TestPki.Leaf(_root, [TestPki.Spiffe("bookinfo-ratings", "bookinfo")]);
        var right = Workload();
        await using var host = Proxy(_root);
        Present(host, wrong);
        await host.StartAsync(Timeouts.Token()).WaitAsync(Timeouts.Default);

        var refused = await NextStreamAsync();
        Assert.Equal(wrong.SerialNumber, refused.Serial);
        // Fixed before the refusal lands; without a fresh connection the retry would still present the old one.
        Present(host, right);
        refused.Verdict.SetResult(_ => throw new RpcException(new Status(StatusCode.PermissionDenied, "node claims ns/bookinfo/sa/bookinfo-reviews but its certificate proves bookinfo-ratings")));
        var retried = await NextStreamAsync();

        Assert.Equal(right.SerialNumber, retried.Serial);
        Assert.Equal(1, host.Stats.ValueOf("control_plane.xds.refused"));
        retried.Verdict.SetResult(_ => { });
        await host.StopAsync().WaitAsync(Timeouts.Default);
    }

    [Fact]
    public async Task RunAsync_NoCertificateYet_WaitsForTheAgentBeforeOpeningAds()
    {
        var certificate = Workload();
        await using var host = Proxy(_root);
        await host.StartAsync(Timeouts.Token()).WaitAsync(Timeouts.Default);

        Assert.False(_streams.Reader.TryRead(out _));
        Present(host, certificate);
        var stream = await NextStreamAsync();

        Assert.Equal(certificate.SerialNumber, stream.Serial);
        stream.Verdict.SetResult(_ => { });
        await host.StopAsync().WaitAsync(Timeouts.Default);
    }

    /// <summary>Records each stream's client certificate, then does what the test decides with it.</summary>
    private sealed class RecordingAds(Channel<(string? Serial, TaskCompletionSource<Action<ServerCallContext>> Verdict)> streams) : AggregatedDiscoveryService.AggregatedDiscoveryServiceBase
    {
        public override async Task StreamAggregatedResources(IAsyncStreamReader<DiscoveryRequest> requestStream, IServerStreamWriter<DiscoveryResponse> responseStream, ServerCallContext context)
        {
            var verdict = new TaskCompletionSource<Action<ServerCallContext>>(TaskCreationOptions.RunContinuationsAsynchronously);
            streams.Writer.TryWrite((context.GetHttpContext().Connection.ClientCertificate?.SerialNumber, verdict));
            try
            {
                var act = await verdict.Task.WaitAsync(context.CancellationToken);
                act(context);
                await Task.Delay(Timeout.Infinite, context.CancellationToken);
            }
            catch (OperationCanceledException)
            {
                // The client left, or the connection was aborted on purpose.
            }
        }
    }
}
