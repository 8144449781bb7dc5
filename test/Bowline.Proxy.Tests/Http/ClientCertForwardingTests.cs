using System.Net;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Http;
using Bowline.Proxy.Listeners;
using Bowline.Proxy.Tests.Infrastructure;
using Bowline.Proxy.Tls;
using Microsoft.Extensions.Time.Testing;

namespace Bowline.Proxy.Tests.Http;

/// <summary>
/// x-forwarded-client-cert as Istio programs it (SANITIZE on outbound, APPEND_FORWARD with subject, URI and DNS on a
/// sidecar's inbound): what a client writes never reaches an app as though a sidecar had vouched for it.
/// </summary>
public sealed class ClientCertForwardingTests
{
    private static readonly System.Security.Cryptography.X509Certificates.X509Certificate2 Root = TestPki.Root();
    private static readonly ClientCertForwarding Inbound = new(ClientCertMode.AppendForward, Subject: true, Cert: false, Chain: false, Dns: true, Uri: true);
    private readonly FakeTimeProvider _time = new();

    private HttpStream Request(string? forged, bool mtls, ConnectionChain? on = null)
    {
        var stream = Streams.Create(_time, request: r =>
        {
            if (forged is not null)
            {
                r.Headers[ClientCertForwarding.Header] = forged;
            }
        });
        PeerIdentity? peer = null;
        if (mtls)
        {
            var uri = TestPki.Spiffe("sleep");
            SpiffeId.TryParse(uri, out var spiffe);
            peer = new PeerIdentity(TestPki.Leaf(Root, [uri]), spiffe);
        }
        var metadata = new ConnectionMetadata(IPAddress.Loopback, 15006, IPAddress.Loopback, 1, mtls ? ConnectionMetadata.Tls : ConnectionMetadata.RawBuffer, null, []);
        stream.Context.Features.Set(on ?? new ConnectionChain(null!, new CompiledFilterChain("c", stream.Chain, null), metadata, peer) { LocalUri = mtls ? TestPki.Spiffe("httpbin") : null });
        return stream;
    }

    [Fact]
    public void Sanitize_RemovesWhatTheClientWrote()
    {
        var stream = Request("By=spiffe://cluster.local/ns/default/sa/admin", mtls: true);

        ClientCertForwarding.Default.Apply(stream);

        Assert.False(stream.Context.Request.Headers.ContainsKey(ClientCertForwarding.Header));
    }

    [Fact]
    public void AppendForward_OverMtls_AppendsThePeerAsIstiosInboundDoes()
    {
        var stream = Request(null, mtls: true);

        Inbound.Apply(stream);

        var xfcc = stream.Context.Request.Headers[ClientCertForwarding.Header].ToString();
        Assert.StartsWith("By=spiffe://cluster.local/ns/default/sa/httpbin;Hash=", xfcc, StringComparison.Ordinal);
        Assert.Contains(";Subject=\"O=cluster.local\"", xfcc, StringComparison.Ordinal);
        Assert.EndsWith(";URI=spiffe://cluster.local/ns/default/sa/sleep", xfcc, StringComparison.Ordinal);
    }

    [Fact]
    public void AConnectionsRequests_ShareOneRenderedElement_UntilTheSettingsChange()
    {
        var first = Request("By=spiffe://cluster.local/ns/default/sa/gateway", mtls: true);
        var connection = first.Context.Features.Get<ConnectionChain>()!;
        var second = Request(null, mtls: true, on: connection);
        var afterUpdate = Request(null, mtls: true, on: connection);

        Inbound.Apply(first);
        var rendered = connection.ClientCertElement;
        Inbound.Apply(second);
        var reused = connection.ClientCertElement;
        (Inbound with { Subject = false }).Apply(afterUpdate);

        var own = second.Context.Request.Headers[ClientCertForwarding.Header].ToString();
        // What the first request received is its own: only the peer's element is kept for the connection.
        Assert.Equal("By=spiffe://cluster.local/ns/default/sa/gateway," + own, first.Context.Request.Headers[ClientCertForwarding.Header].ToString());
        Assert.Same(rendered, reused);
        Assert.NotSame(rendered, connection.ClientCertElement);
        var updated = afterUpdate.Context.Request.Headers[ClientCertForwarding.Header].ToString();
        Assert.Contains(";Subject=", own, StringComparison.Ordinal);
        Assert.DoesNotContain(";Subject=", updated, StringComparison.Ordinal);
    }

    [Fact]
    public void AppendForward_OnPlaintext_DropsAForgedHeader_WhereEnvoyWouldPassItOn()
    {
        var stream = Request("By=spiffe://cluster.local/ns/default/sa/httpbin;URI=spiffe://cluster.local/ns/default/sa/admin", mtls: false);

        Inbound.Apply(stream);

        Assert.False(stream.Context.Request.Headers.ContainsKey(ClientCertForwarding.Header));
    }

    [Fact]
    public void SanitizeSet_ReplacesWhatTheClientWrote()
    {
        var stream = Request("URI=spiffe://cluster.local/ns/default/sa/admin", mtls: true);

        (Inbound with { Mode = ClientCertMode.SanitizeSet }).Apply(stream);

        var xfcc = stream.Context.Request.Headers[ClientCertForwarding.Header].ToString();
        Assert.DoesNotContain("sa/admin", xfcc, StringComparison.Ordinal);
        Assert.Contains("URI=spiffe://cluster.local/ns/default/sa/sleep", xfcc, StringComparison.Ordinal);
    }
}
