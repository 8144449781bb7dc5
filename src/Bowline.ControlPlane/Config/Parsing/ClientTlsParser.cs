namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>
/// Istio's <c>ClientTLSSettings</c> (a DestinationRule's <c>tls</c>) with Istio's rules (pkg/config/validation/agent
/// ValidateTLS): MUTUAL needs a client certificate and key unless a credentialName holds them, a credentialName
/// excludes file paths, and insecureSkipVerify excludes what it would skip.
/// </summary>
internal static class ClientTlsParser
{
    public static ClientTlsSettings? Parse(FieldReader? tls)
    {
        if (tls is null)
        {
            return null;
        }
        var before = tls.ErrorCount;
        // Istio's default mode (the enum's zero) is DISABLE.
        var mode = tls.String("mode") ?? ClientTlsSettings.Disable;
        if (mode is not (ClientTlsSettings.Disable or ClientTlsSettings.Simple or ClientTlsSettings.Mutual or ClientTlsSettings.IstioMutual))
        {
            tls.Error("mode", $"'{mode}' must be DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL");
        }
        var settings = new ClientTlsSettings(mode)
        {
            ClientCertificate = NonEmpty(tls.String("clientCertificate")),
            PrivateKey = NonEmpty(tls.String("privateKey")),
            CaCertificates = NonEmpty(tls.String("caCertificates")),
            CredentialName = NonEmpty(tls.String("credentialName")),
            SubjectAltNames = tls.StringList("subjectAltNames"),
            Sni = NonEmpty(tls.String("sni")),
            InsecureSkipVerify = tls.Bool("insecureSkipVerify") ?? false,
        };
        var crl = NonEmpty(tls.String("caCrl"));
        tls.Finish();
        var origination = mode is ClientTlsSettings.Simple or ClientTlsSettings.Mutual;
        if (settings.InsecureSkipVerify && mode == ClientTlsSettings.Simple && (settings.CaCertificates is not null || settings.CredentialName is not null || settings.SubjectAltNames.Count > 0))
        {
            tls.Error("insecureSkipVerify", "cannot give caCertificates, credentialName or subjectAltNames when insecureSkipVerify is true: nothing would verify them");
        }
        if (settings.InsecureSkipVerify && mode == ClientTlsSettings.Mutual && (settings.CaCertificates is not null || settings.SubjectAltNames.Count > 0))
        {
            tls.Error("insecureSkipVerify", "cannot give caCertificates or subjectAltNames when insecureSkipVerify is true: nothing would verify them");
        }
        if (origination && settings.CredentialName is not null)
        {
            if ((settings.ClientCertificate ?? settings.CaCertificates ?? settings.PrivateKey ?? crl) is not null)
            {
                tls.Error("credentialName", "cannot give clientCertificate, privateKey, caCertificates or caCrl when credentialName is set: the credential holds them");
            }
        }
        else if (mode == ClientTlsSettings.Mutual)
        {
            if (settings.ClientCertificate is null)
            {
                tls.Error("clientCertificate", "MUTUAL needs a clientCertificate (a PEM file path) and privateKey, or a credentialName");
            }
            if (settings.PrivateKey is null)
            {
                tls.Error("privateKey", "MUTUAL needs a privateKey (a PEM file path) with the clientCertificate, or a credentialName");
            }
        }
        if (mode == ClientTlsSettings.IstioMutual)
        {
            foreach (var field in new[] { "clientCertificate", "privateKey", "caCertificates", "credentialName" }.Where(tls.Has))
            {
                tls.Warning(field, $"{field} is ignored with ISTIO_MUTUAL, which uses the mesh's workload certificate and trust bundle; remove it, or use MUTUAL");
            }
        }
        if (crl is not null)
        {
            tls.Warning("caCrl", "certificate revocation lists (caCrl) are not supported by Bowline yet; revoked certificates are not refused");
        }
        return tls.ErrorCount == before ? settings : null;
    }

    private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
