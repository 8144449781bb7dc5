namespace Bowline.ControlPlane.Config;

/// <summary>Istio's <c>ServerTLSSettings.TLSmode</c>; the enum's zero, and so the default, is PASSTHROUGH.</summary>
internal enum ServerTlsMode
{
    Passthrough,
    Simple,
    Mutual,
    AutoPassthrough,
    IstioMutual,
    OptionalMutual,
}

/// <summary>
/// A Gateway server's <c>tls</c> (Istio's <c>ServerTLSSettings</c>), validated by <see cref="Parsing.GatewayTlsParser"/>.
/// The certificate is either a <see cref="CredentialName"/> (a Secret served over SDS) or file paths on the gateway.
/// </summary>
internal sealed record ServerTlsSettings(ServerTlsMode Mode)
{
    /// <summary>On a plain HTTP server: answer every request with a 301 to the same URL over https.</summary>
    public bool HttpsRedirect { get; init; }

    public string? CredentialName { get; init; }

    /// <summary>File paths on the gateway's machine (Istio's <c>serverCertificate</c>, <c>privateKey</c>, <c>caCertificates</c>).</summary>
    public string? ServerCertificate { get; init; }

    public string? PrivateKey { get; init; }

    public string? CaCertificates { get; init; }

    /// <summary>Names a client certificate must carry (MUTUAL, OPTIONAL_MUTUAL, ISTIO_MUTUAL); any when empty.</summary>
    public IReadOnlyList<string> SubjectAltNames { get; init; } = [];

    /// <summary>Envoy's names: <c>TLSv1_2</c>, <c>TLSv1_3</c>; null is TLS_AUTO (Envoy's default).</summary>
    public string? MinProtocolVersion { get; init; }

    public string? MaxProtocolVersion { get; init; }

    /// <summary>Valid, supported, de-duplicated cipher suites in the order given; empty means the proxy's defaults.</summary>
    public IReadOnlyList<string> CipherSuites { get; init; } = [];

    /// <summary>Whether the gateway terminates TLS for this server (every mode but the passthrough ones).</summary>
    public bool Terminates => Mode is ServerTlsMode.Simple or ServerTlsMode.Mutual or ServerTlsMode.OptionalMutual or ServerTlsMode.IstioMutual;
}
