using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Bowline.Proxy.Configuration;
using Envoy.Extensions.TransportSockets.Tls.V3;

namespace Bowline.Proxy.Tls;

/// <summary>
/// A cluster's <c>envoy.transport_sockets.tls</c> with an <c>UpstreamTlsContext</c>, compiled once per update:
/// originate TLS with the SNI and ALPN given (Istio's <c>istio-peer-exchange</c>/<c>istio</c> tell the server's
/// sidecar this is mesh mTLS), present the current workload certificate, and accept the server only if its chain
/// verifies against the current roots and its SAN is one the control plane says the destination runs as.
/// </summary>
internal sealed class UpstreamTls
{
    private UpstreamTls(TlsSettings settings, string? sni, bool autoSni, bool autoSanValidation)
    {
        Settings = settings;
        Sni = sni;
        AutoSni = autoSni;
        AutoSanValidation = autoSanValidation;
        RequireSpiffe = settings.ValidationSource?.SdsName == "ROOTCA";
    }

    public TlsSettings Settings { get; }

    /// <summary>The server name sent; null sends none (the upstream address is then the TLS target host).</summary>
    public string? Sni { get; }

    public bool RequireSpiffe { get; }

    /// <summary>Envoy's auto_sni: with no configured SNI, the request's host name is sent.</summary>
    public bool AutoSni { get; }

    /// <summary>Envoy's auto_san_validation: the server's certificate must be for the request's host name.</summary>
    public bool AutoSanValidation { get; }

    public static UpstreamTls Compile(Envoy.Config.Core.V3.TransportSocket socket, string where, bool autoSni = false, bool autoSanValidation = false)
    {
        XdsFields.Check(socket, where + " transport_socket", "name", "typed_config");
        if (socket.TypedConfig is not { } typed || !typed.TryUnpack<UpstreamTlsContext>(out var context))
        {
            throw new ProxyConfigException($"{where}: transport_socket {socket.Name} ({socket.TypedConfig?.TypeUrl ?? "no typed_config"}) is not supported; use {DownstreamTls.TransportSocketName} with an UpstreamTlsContext, or raw_buffer");
        }
        XdsFields.Check(context, where + " UpstreamTlsContext", "common_tls_context", "sni");
        return new UpstreamTls(TlsSettings.Compile(context.CommonTlsContext, where), context.Sni.Length > 0 ? context.Sni : null, autoSni, autoSanValidation);
    }

    /// <summary>Envoy's plaintext transport socket, which a transport_socket_matches entry may name.</summary>
    public static bool IsRawBuffer(Envoy.Config.Core.V3.TransportSocket socket) =>
        socket.Name is "envoy.transport_sockets.raw_buffer" || socket.TypedConfig?.TypeUrl == "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";

    /// <summary>Completes the handshake over <paramref name="transport"/>; throws with the reason when the server is not accepted.</summary>
    /// <param name="requestHost">The request's host name (its Host header without the port), for auto_sni and auto_san_validation.</param>
    /// <param name="endpoint">Told the mesh identity the server proved (<see cref="Clusters.UpstreamEndpoint.PeerIdentity"/>), which vouches for the metadata it sends back.</param>
    public async Task<SslStream> ConnectAsync(Stream transport, string host, string? requestHost, SecretStore secrets, CancellationToken cancellationToken, Clusters.UpstreamEndpoint? endpoint = null)
    {
        var certificate = Settings.CertificateSource?.Certificate(secrets);
        if (Settings.CertificateSource is not null && certificate is null)
        {
            throw new AuthenticationExceptionWithReason($"{Settings.CertificateSource.Describe()} has not arrived yet");
        }
        X509Certificate2Collection? roots = null;
        if (Settings.ValidationSource is { } validation && (roots = validation.Bundle(secrets)) is null)
        {
            throw new AuthenticationExceptionWithReason($"{validation.Describe()} has not arrived yet");
        }
        string? failure = null;
        SpiffeId? verified = null;
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = Sni ?? (AutoSni && requestHost is not null ? requestHost : host),
            EnabledSslProtocols = Settings.Protocols,
            CipherSuitesPolicy = Settings.Ciphers,
            ApplicationProtocols = Settings.Alpn.Count > 0 ? Settings.Alpn : null,
            ClientCertificateContext = certificate?.Context,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
        options.CertificateChainPolicy = Settings.ChainPolicy(roots);
        var checkName = AutoSanValidation && Sni is null && AutoSni && requestHost is not null;
        options.RemoteCertificateValidationCallback = (_, presented, chain, errors) =>
        {
            if (roots is null)
            {
                // No validation context: Envoy accepts any server (DestinationRule SIMPLE without caCertificates is refused by the control plane).
                return true;
            }
            var leaf = presented as X509Certificate2 ?? (presented is null ? null : new X509Certificate2(presented));
            var (verdict, reason, peer) = PeerVerifier.Verify(leaf, errors, chain, Settings, peerIsClient: false, RequireSpiffe, checkName);
            failure = reason;
            verified = RequireSpiffe ? peer?.Spiffe : null;
            return verdict == PeerVerifier.Failure.None;
        };
        var ssl = new SslStream(transport, leaveInnerStreamOpen: false);
        try
        {
            await ssl.AuthenticateAsClientAsync(options, cancellationToken).ConfigureAwait(false);
            if (endpoint is not null && verified is not null)
            {
                endpoint.PeerIdentity = verified;
            }
            return ssl;
        }
        catch (System.Security.Authentication.AuthenticationException e)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw new AuthenticationExceptionWithReason(failure ?? e.Message, e);
        }
    }
}

/// <summary>A refused upstream handshake, with the reason Envoy would put in %UPSTREAM_TRANSPORT_FAILURE_REASON%.</summary>
internal sealed class AuthenticationExceptionWithReason(string reason, Exception? inner = null) : System.Security.Authentication.AuthenticationException($"TLS error: {reason}", inner);

/// <summary>
/// A cluster's transport sockets: <c>transport_socket_matches</c> (first entry whose <c>match</c> fields all equal the
/// endpoint's <c>envoy.transport_socket_match</c> metadata) then the cluster's <c>transport_socket</c>, else plaintext.
/// Istio's auto mTLS is exactly this: endpoints with a sidecar carry <c>tlsMode: istio</c>.
/// </summary>
internal sealed class UpstreamTransport
{
    public const string MetadataKey = "envoy.transport_socket_match";

    private readonly (Dictionary<string, string> Match, UpstreamTls? Tls)[] _matches;
    private readonly UpstreamTls? _default;

    private UpstreamTransport((Dictionary<string, string>, UpstreamTls?)[] matches, UpstreamTls? fallback)
    {
        _matches = matches;
        _default = fallback;
        Unlabelled = For(NoFields);
    }

    public static UpstreamTransport? Compile(Envoy.Config.Cluster.V3.Cluster cluster, string where, bool autoSni = false, bool autoSanValidation = false)
    {
        var fallback = cluster.TransportSocket is { } socket && !UpstreamTls.IsRawBuffer(socket) ? UpstreamTls.Compile(socket, where, autoSni, autoSanValidation) : null;
        var matches = new List<(Dictionary<string, string>, UpstreamTls?)>();
        foreach (var entry in cluster.TransportSocketMatches)
        {
            var mwhere = $"{where} transport_socket_matches {entry.Name}";
            XdsFields.Check(entry, mwhere, "name", "match", "transport_socket");
            var match = Fields(entry.Match, mwhere + " match");
            matches.Add((match, entry.TransportSocket is { } s && !UpstreamTls.IsRawBuffer(s) ? UpstreamTls.Compile(s, mwhere, autoSni, autoSanValidation) : null));
        }
        return fallback is null && matches.All(m => m.Item2 is null) ? null : new UpstreamTransport([.. matches], fallback);
    }

    private static readonly Dictionary<string, string> NoFields = [];

    /// <summary>The TLS for an endpoint without metadata (DNS hosts): the first match with no fields, or the cluster's socket.</summary>
    public UpstreamTls? Unlabelled { get; }

    /// <summary>The TLS an endpoint with <paramref name="metadata"/> (its transport-socket-match fields) is reached with; null for plaintext.</summary>
    public UpstreamTls? For(IReadOnlyDictionary<string, string> metadata)
    {
        foreach (var (match, tls) in _matches)
        {
            if (match.All(kv => metadata.TryGetValue(kv.Key, out var value) && value == kv.Value))
            {
                return tls;
            }
        }
        return _default;
    }

    /// <summary>A Struct of string fields (what Istio's matches hold), for equality on endpoint metadata.</summary>
    public static Dictionary<string, string> Fields(Google.Protobuf.WellKnownTypes.Struct? fields, string where)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in fields?.Fields ?? [])
        {
            result[key] = value.KindCase switch
            {
                Google.Protobuf.WellKnownTypes.Value.KindOneofCase.StringValue => value.StringValue,
                Google.Protobuf.WellKnownTypes.Value.KindOneofCase.BoolValue => value.BoolValue ? "true" : "false",
                Google.Protobuf.WellKnownTypes.Value.KindOneofCase.NumberValue => value.NumberValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
                _ => throw new ProxyConfigException($"{where}: field {key} is a {value.KindCase}; Bowline matches string, bool and number fields"),
            };
        }
        return result;
    }
}
