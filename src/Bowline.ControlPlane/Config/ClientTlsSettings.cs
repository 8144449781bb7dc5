namespace Bowline.ControlPlane.Config;

/// <summary>
/// Istio's <c>ClientTLSSettings</c> (a DestinationRule's <c>trafficPolicy.tls</c>, per subset and per port): how the
/// client's sidecar speaks TLS to the destination. File paths are read by the proxy (Envoy's DataSource filename).
/// </summary>
/// <param name="Mode"><see cref="Disable"/>, <see cref="Simple"/>, <see cref="Mutual"/> or <see cref="IstioMutual"/>.</param>
internal sealed record ClientTlsSettings(string Mode)
{
    /// <summary>Plaintext; also turns automatic mTLS off for the destination.</summary>
    public const string Disable = "DISABLE";

    /// <summary>TLS origination: verify the server, present no certificate.</summary>
    public const string Simple = "SIMPLE";

    /// <summary>TLS origination with a client certificate (files or <see cref="CredentialName"/>).</summary>
    public const string Mutual = "MUTUAL";

    /// <summary>Mutual TLS with the mesh's workload certificates (SDS <c>default</c> and <c>ROOTCA</c>).</summary>
    public const string IstioMutual = "ISTIO_MUTUAL";

    public string? ClientCertificate { get; init; }

    public string? PrivateKey { get; init; }

    public string? CaCertificates { get; init; }

    /// <summary>A secret's name, sent as the SDS name <c>kubernetes://&lt;name&gt;</c> (its CA as <c>...-cacert</c>), as Istio does.</summary>
    public string? CredentialName { get; init; }

    /// <summary>Names the server's certificate must carry; empty: for ISTIO_MUTUAL, the destination's service accounts.</summary>
    public IReadOnlyList<string> SubjectAltNames { get; init; } = [];

    public string? Sni { get; init; }

    public bool InsecureSkipVerify { get; init; }
}
