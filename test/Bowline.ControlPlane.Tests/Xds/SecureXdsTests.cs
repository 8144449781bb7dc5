using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Bowline.Ca.Authentication;
using Bowline.Ca.Grpc.V1;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.Xds;
using Envoy.Config.Core.V3;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Time.Testing;

namespace Bowline.ControlPlane.Tests.Xds;

/// <summary>
/// The TLS xDS port (15012) over real TLS on port 0: ADS only for a verified mesh certificate whose identity the node
/// claims, the CA for a bootstrap token or a certificate, and the serving certificate renewed without dropping streams.
/// </summary>
public sealed class SecureXdsTests
{
    private static Node Productpage(string? serviceAccount = "bookinfo-productpage", string? id = null)
    {
        var node = TestNodes.ProductpageSidecar();
        if (serviceAccount is not null)
        {
            node.Metadata.Fields[NodeMetadata.ServiceAccount] = Value.ForString(serviceAccount);
        }
        node.Id = id ?? node.Id;
        return node;
    }

    private static async Task<RpcException> RefusedAsync(AdsTestClient ads, Node node)
    {
        try
        {
            await ads.SubscribeAsync(TypeUrls.Listener, node);
        }
        catch (Exception e) when (e is RpcException or InvalidOperationException or IOException)
        {
            // The server may refuse before it reads: the refusal is then on the response side.
        }
        return await ads.ReceiveErrorAsync();
    }

    [Fact]
    public async Task StreamAggregatedResources_CertificateOfTheNodesOwnIdentity_IsServed()
    {
        await using var cp = await SecureXdsFixture.StartAsync();
        using var ads = cp.ConnectAds(cp.SecureChannel(cp.WorkloadCertificate("bookinfo-productpage")));

        await ads.SubscribeAsync(TypeUrls.Listener, Productpage());
        var listeners = await ads.ReceiveAsync();

        Assert.Contains(listeners.Resources, r => r.Unpack<Envoy.Config.Listener.V3.Listener>().Name == "virtualInbound");
        var proxy = Assert.Single(cp.Host.Proxies.All);
        Assert.Equal(("bookinfo-productpage", "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"), (proxy.Node.ServiceAccount, proxy.VerifiedIdentity));
    }

    [Fact]
    public async Task ClientStatus_OnTheTlsPort_IsServedToTheControlPlanesNamespaceOnly_ThoughEveryCallerIsOnLoopback()
    {
        await using var cp = await SecureXdsFixture.StartAsync();
        using var ads = cp.ConnectAds(cp.SecureChannel(cp.WorkloadCertificate("bookinfo-productpage")));
        await ads.SubscribeAsync(TypeUrls.Listener, Productpage());
        await ads.ReceiveAsync();

        // A workload of the mesh, from loopback as a local forwarder would make it look: refused, with the fix.
        var workload = new Envoy.Service.Status.V3.ClientStatusDiscoveryService.ClientStatusDiscoveryServiceClient(cp.SecureChannel(cp.WorkloadCertificate("bookinfo-ratings")));
        var refused = await Assert.ThrowsAsync<RpcException>(() => workload.FetchClientStatusAsync(new(), cancellationToken: TestTimeouts.Token()).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
        Assert.Contains("default/bookinfo-ratings", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("istio-system", refused.Status.Detail, StringComparison.Ordinal);

        // The control plane's own namespace (istioctl's identity there) reads every proxy.
        var admin = new Envoy.Service.Status.V3.ClientStatusDiscoveryService.ClientStatusDiscoveryServiceClient(cp.SecureChannel(cp.WorkloadCertificate("istioctl", "istio-system")));
        var status = await admin.FetchClientStatusAsync(new(), cancellationToken: TestTimeouts.Token());
        Assert.Equal(Productpage().Id, Assert.Single(status.Config).Node.Id);
    }

    [Fact]
    public async Task StreamAggregatedResources_CertificateOfServiceAccountAForNodeOfB_IsPermissionDenied()
    {
        await using var cp = await SecureXdsFixture.StartAsync();
        var before = ControlPlaneMetrics.XdsPermissionDenied.Value;
        using var ads = cp.ConnectAds(cp.SecureChannel(cp.WorkloadCertificate("bookinfo-ratings")));

        var refused = await RefusedAsync(ads, Productpage());

        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
        Assert.Contains("ns/default/sa/bookinfo-productpage", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("spiffe://cluster.local/ns/default/sa/bookinfo-ratings", refused.Status.Detail, StringComparison.Ordinal);
        Assert.True(ControlPlaneMetrics.XdsPermissionDenied.Value > before);
        Assert.Empty(cp.Host.Proxies.All);
    }

    [Fact]
    public async Task StreamAggregatedResources_NodeIdInAnotherNamespace_IsPermissionDenied()
    {
        await using var cp = await SecureXdsFixture.StartAsync();
        using var ads = cp.ConnectAds(cp.SecureChannel(cp.WorkloadCertificate("bookinfo-productpage")));

        var refused = await RefusedAsync(ads, Productpage(id: "sidecar~127.0.0.1~productpage-v1.prod~prod.svc.cluster.local"));

        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
        Assert.Contains("prod (node id)", refused.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StreamAggregatedResources_NoClientCertificate_IsUnauthenticatedWhileTheCaStillIssuesForAToken()
    {
        await using var cp = await SecureXdsFixture.StartAsync();
        var before = ControlPlaneMetrics.XdsUnauthenticated.Value;
        var channel = cp.SecureChannel(clientCertificate: null);
        using var ads = cp.ConnectAds(channel);

        var refused = await RefusedAsync(ads, Productpage());

        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
        Assert.Contains("needs a client certificate", refused.Status.Detail, StringComparison.Ordinal);
        Assert.True(ControlPlaneMetrics.XdsUnauthenticated.Value > before);

        var token = BootstrapTokenStore.Open(cp.CaDirectory, TimeProvider.System).Issue(new Bowline.Ca.WorkloadIdentity("default", "bookinfo-productpage"));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var issued = await cp.CaClient(channel).CreateCertificateAsync(
            new IstioCertificateRequest { Csr = SecureXdsFixture.Csr(key, "spiffe://cluster.local/ns/default/sa/bookinfo-productpage") },
            new Grpc.Core.Metadata { { "authorization", $"Bearer {token}" } },
            cancellationToken: TestTimeouts.Token()).ResponseAsync.WaitAsync(TestTimeouts.Default);
        Assert.True(issued.CertChain.Count >= 2);
    }

    [Fact]
    public async Task StreamAggregatedResources_CertificateFromAnotherRoot_IsUnauthenticated()
    {
        await using var cp = await SecureXdsFixture.StartAsync();
        using var foreign = ForeignSvid("spiffe://cluster.local/ns/default/sa/bookinfo-productpage");
        using var ads = cp.ConnectAds(cp.SecureChannel(foreign));

        var refused = await RefusedAsync(ads, Productpage());

        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
        Assert.Contains("does not verify against this mesh's roots", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Empty(cp.Host.Proxies.All);
    }

    [Fact]
    public async Task CreateCertificate_WithAClientCertificateAndNoToken_RenewsThatIdentityOnly()
    {
        await using var cp = await SecureXdsFixture.StartAsync();
        var ca = cp.CaClient(cp.SecureChannel(cp.WorkloadCertificate("bookinfo-reviews")));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);

        var renewed = await ca.CreateCertificateAsync(new IstioCertificateRequest { Csr = SecureXdsFixture.Csr(key, "spiffe://cluster.local/ns/default/sa/bookinfo-reviews") }, cancellationToken: TestTimeouts.Token()).ResponseAsync.WaitAsync(TestTimeouts.Default);
        var other = await Assert.ThrowsAsync<RpcException>(() => ca.CreateCertificateAsync(new IstioCertificateRequest { Csr = SecureXdsFixture.Csr(key, "spiffe://cluster.local/ns/default/sa/bookinfo-ratings") }, cancellationToken: TestTimeouts.Token()).ResponseAsync.WaitAsync(TestTimeouts.Default));

        using var leaf = X509Certificate2.CreateFromPem(renewed.CertChain[0]);
        Assert.EndsWith(":spiffe://cluster.local/ns/default/sa/bookinfo-reviews", leaf.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().Format(false), StringComparison.Ordinal);
        Assert.Equal(StatusCode.PermissionDenied, other.StatusCode);
    }

    [Fact]
    public async Task CreateCertificate_ForeignCertificateAndNoToken_IsUnauthenticatedNamingBoth()
    {
        await using var cp = await SecureXdsFixture.StartAsync();
        using var foreign = ForeignSvid("spiffe://cluster.local/ns/default/sa/bookinfo-reviews");
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);

        var refused = await Assert.ThrowsAsync<RpcException>(() => cp.CaClient(cp.SecureChannel(foreign)).CreateCertificateAsync(new IstioCertificateRequest { Csr = SecureXdsFixture.Csr(key, "spiffe://cluster.local/ns/default/sa/bookinfo-reviews") }, cancellationToken: TestTimeouts.Token()).ResponseAsync.WaitAsync(TestTimeouts.Default));

        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
        Assert.Contains("does not verify against this mesh's roots", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("authorization", refused.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ServingCertificate_HalfLifePasses_NewHandshakesGetANewOneAndAnOpenStreamKeepsBeingServed()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var cp = await SecureXdsFixture.StartAsync(time, servingTtl: TimeSpan.FromHours(2));
        var client = cp.WorkloadCertificate("bookinfo-productpage");
        using var open = cp.ConnectAds(cp.SecureChannel(client));
        await open.SubscribeAsync(TypeUrls.Cluster, Productpage());
        var clusters = await open.ReceiveAsync();
        await open.AckAsync(clusters);
        var first = cp.ServerCertificatesSeen[0];

        time.Advance(TimeSpan.FromHours(1) + TimeSpan.FromMinutes(1));
        var renewedChannel = cp.SecureChannel(client);
        using var second = cp.ConnectAds(renewedChannel);
        await second.SubscribeAsync(TypeUrls.Cluster, Productpage());
        await second.ReceiveAsync();

        Assert.NotEqual(first.SerialNumber, cp.ServerCertificatesSeen[0].SerialNumber);
        Assert.True(cp.ServerCertificatesSeen[0].NotAfter > first.NotAfter);
        // The stream opened under the old certificate is still served (the config watcher runs on the fake clock,
        // so a new subscription on it stands in for a push).
        await open.SubscribeAsync(TypeUrls.Listener, node: null);
        var listeners = await open.ReceiveAsync();
        Assert.Equal(TypeUrls.Listener, listeners.TypeUrl);
    }

    [Fact]
    public async Task Start_PlaintextOff_ServesOnlyTheTlsPort()
    {
        await using var cp = await SecureXdsFixture.StartAsync(plaintext: false);
        using var ads = cp.ConnectAds(cp.SecureChannel(cp.WorkloadCertificate("bookinfo-productpage")));

        await ads.SubscribeAsync(TypeUrls.Listener, Productpage());
        await ads.ReceiveAsync();

        Assert.Throws<InvalidOperationException>(() => cp.Host.XdsAddress);
        Assert.Equal("https", cp.Host.SecureXdsAddress!.Scheme);
    }

    /// <summary>A well-formed SVID under a root this mesh does not trust.</summary>
    private static X509Certificate2 ForeignSvid(string spiffeId)
    {
        using var rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var rootRequest = new CertificateRequest("O=cluster.local, CN=Another root", rootKey, HashAlgorithmName.SHA256);
        rootRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        rootRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        using var root = rootRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName(""), key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(spiffeId));
        request.CertificateExtensions.Add(san.Build(critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var leaf = request.Create(root, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1), [1, 2, 3, 4]);
        return leaf.CopyWithPrivateKey(key);
    }
}
