namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>
/// A Gateway server's <c>tls</c> with Istio's rules (pkg/config/validation validateTLSOptions and validateServer):
/// ISTIO_MUTUAL carries no certificate of its own, one certificate source only, SIMPLE needs a certificate and key
/// unless a credentialName holds them, MUTUAL also a CA bundle, invalid or duplicate cipher suites are warned about and
/// dropped. Bowline is stricter where its proxy does less than Envoy and would otherwise accept a setting it does not
/// enforce: TLS below 1.2, CRLs, SPKI/hash pinning and several certificates are errors. PASSTHROUGH and
/// AUTO_PASSTHROUGH forward the TLS bytes untouched (routed by SNI), so certificate settings on them are warned about.
/// </summary>
internal static class GatewayTlsParser
{
    /// <summary>Istio's ValidCipherSuites (BoringSSL's names, pkg/config/security).</summary>
    private static readonly HashSet<string> IstioCipherSuites = new(StringComparer.Ordinal)
    {
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA", "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA", "AES256-SHA", "DES-CBC3-SHA",
    };

    /// <summary>Of those, what Bowline's proxy can offer (3DES is gone from .NET's and modern OpenSSL's defaults).</summary>
    private static readonly HashSet<string> Unsupported = new(StringComparer.Ordinal) { "DES-CBC3-SHA" };

    private static readonly string[] Modes = ["PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"];

    /// <param name="protocol">The server's port protocol, upper case (HTTP, HTTPS, ...).</param>
    public static ServerTlsSettings? Parse(FieldReader server, string? protocol)
    {
        var tls = server.Map("tls");
        var isTlsPort = protocol is "HTTPS" or "TLS";
        if (tls is null)
        {
            if (isTlsPort)
            {
                server.Error("tls", $"a {protocol} server needs tls settings (mode SIMPLE with a credentialName, for example)");
            }
            return null;
        }
        var before = tls.ErrorCount;
        var modeText = tls.String("mode") ?? "PASSTHROUGH";
        var index = Array.IndexOf(Modes, modeText);
        if (index < 0)
        {
            tls.Error("mode", $"'{modeText}' must be one of {string.Join(", ", Modes)}");
        }
        var mode = index < 0 ? ServerTlsMode.Passthrough : (ServerTlsMode)index;
        var httpsRedirect = tls.Bool("httpsRedirect") ?? false;
        var credentialName = NonEmpty(tls.String("credentialName"));
        var credentialNames = tls.StringList("credentialNames");
        var tlsCertificates = tls.MapList("tlsCertificates");
        var serverCertificate = NonEmpty(tls.String("serverCertificate"));
        var privateKey = NonEmpty(tls.String("privateKey"));
        var caCertificates = NonEmpty(tls.String("caCertificates"));
        var caCrl = NonEmpty(tls.String("caCrl"));
        var subjectAltNames = tls.StringList("subjectAltNames");
        var spki = tls.StringList("verifyCertificateSpki");
        var hash = tls.StringList("verifyCertificateHash");
        var min = Version(tls, "minProtocolVersion");
        var max = Version(tls, "maxProtocolVersion");
        var ciphers = Ciphers(tls, tls.StringList("cipherSuites"));
        var curves = tls.StringList("ecdhCurves");
        var insecure = tls.Bool("insecureSkipVerify");
        var caCredential = NonEmpty(tls.String("caCertCredentialName"));
        tls.Finish();

        if (!isTlsPort)
        {
            // Istio: a plain HTTP server may carry tls only for httpsRedirect (the default PASSTHROUGH mode, no files).
            if (protocol is "HTTP" or "HTTP2" or "GRPC")
            {
                if (mode != ServerTlsMode.Passthrough || (caCertificates ?? privateKey ?? serverCertificate) is not null)
                {
                    server.Error("tls", $"a plain-text {protocol} server cannot terminate TLS; use protocol HTTPS for that, or keep only tls.httpsRedirect here");
                }
                return tls.ErrorCount == before ? new ServerTlsSettings(ServerTlsMode.Passthrough) { HttpsRedirect = httpsRedirect } : null;
            }
            server.Error("tls", $"a {protocol} server cannot have tls settings; use protocol HTTPS or TLS");
            return null;
        }
        if (httpsRedirect)
        {
            // Istio's wording is a warning too: the redirect is meant for the plain HTTP server of the same hosts.
            tls.Warning("httpsRedirect", "tls.httpsRedirect should only be used with http servers; it has no effect on an HTTPS server");
        }

        if (mode == ServerTlsMode.IstioMutual)
        {
            foreach (var (field, given) in new (string, bool)[]
            {
                ("serverCertificate", serverCertificate is not null), ("privateKey", privateKey is not null), ("caCertificates", caCertificates is not null),
                ("tlsCertificates", tlsCertificates.Count > 0), ("credentialName", credentialName is not null), ("credentialNames", credentialNames.Count > 0),
            })
            {
                if (given)
                {
                    tls.Error(field, $"ISTIO_MUTUAL TLS cannot have an associated {field}: it uses the gateway's own workload certificate and the mesh's trust bundle; remove it, or use MUTUAL");
                }
            }
        }
        else if (mode is ServerTlsMode.Passthrough or ServerTlsMode.AutoPassthrough)
        {
            // The gateway never sees the plaintext: a certificate here would be a setting that does nothing.
            foreach (var (field, given) in new (string, bool)[]
            {
                ("serverCertificate", serverCertificate is not null), ("privateKey", privateKey is not null), ("caCertificates", caCertificates is not null),
                ("credentialName", credentialName is not null), ("minProtocolVersion", min is not null), ("cipherSuites", ciphers.Count > 0),
            })
            {
                if (given)
                {
                    tls.Warning(field, $"{modeText} does not terminate TLS, so {field} has no effect; the backend's own TLS settings apply");
                }
            }
        }
        else
        {
            var sources = (serverCertificate is not null && privateKey is not null ? 1 : 0) + (credentialName is not null ? 1 : 0) + (credentialNames.Count > 0 ? 1 : 0) + (tlsCertificates.Count > 0 ? 1 : 0);
            if (sources > 1)
            {
                tls.Error("credentialName", "only one of credentialName, credentialNames, serverCertificate/privateKey and tlsCertificates may be given");
            }
            var prefix = mode == ServerTlsMode.Simple ? "SIMPLE TLS" : "MUTUAL TLS";
            if (credentialName is null && credentialNames.Count == 0 && tlsCertificates.Count == 0)
            {
                if (serverCertificate is null)
                {
                    tls.Error("serverCertificate", $"{prefix} requires a server certificate: give credentialName (a Secret with tls.crt and tls.key), or serverCertificate and privateKey file paths");
                }
                if (privateKey is null)
                {
                    tls.Error("privateKey", $"{prefix} requires a private key: give credentialName, or privateKey with serverCertificate");
                }
                if (mode != ServerTlsMode.Simple && caCertificates is null)
                {
                    tls.Error("caCertificates", $"{prefix} requires a client CA bundle: give caCertificates (a PEM file path), or use a credentialName whose Secret holds ca.crt");
                }
            }
            else if (credentialName is not null && (serverCertificate ?? privateKey ?? caCertificates) is not null && sources == 1)
            {
                tls.Error("credentialName", "cannot give serverCertificate, privateKey or caCertificates with credentialName: the Secret holds them");
            }
            if (credentialNames.Count > 0)
            {
                tls.Error("credentialNames", "several certificates per server (an RSA and an ECDSA one) are not supported by Bowline yet; give one credentialName");
            }
            if (tlsCertificates.Count > 0)
            {
                tls.Error("tlsCertificates", "several certificates per server are not supported by Bowline yet; give serverCertificate and privateKey, or a credentialName");
            }
        }
        if (caCrl is not null)
        {
            if (credentialName is not null)
            {
                tls.Error("caCrl", "CRL is not supported with credentialName; CRL has to be specified in the credential");
            }
            else if (mode == ServerTlsMode.Simple)
            {
                tls.Error("caCrl", "CRL is not supported with SIMPLE TLS");
            }
            else
            {
                tls.Error("caCrl", "certificate revocation lists are not supported by Bowline yet, so revoked client certificates would be accepted; remove caCrl");
            }
        }
        if (spki.Count > 0 || hash.Count > 0)
        {
            tls.Error(spki.Count > 0 ? "verifyCertificateSpki" : "verifyCertificateHash", "pinning client certificates by SPKI or hash is not supported by Bowline yet; use subjectAltNames");
        }
        if (insecure is true)
        {
            tls.Error("insecureSkipVerify", "insecureSkipVerify is not supported by Bowline on gateway servers; use OPTIONAL_MUTUAL to accept clients without a certificate");
        }
        if (caCredential is not null)
        {
            tls.Error("caCertCredentialName", $"caCertCredentialName is not supported by Bowline yet; put ca.crt in the credential's Secret, or in a Secret named <credentialName>{CredentialSecrets.CaSuffix}");
        }
        if (curves.Count > 0)
        {
            tls.Warning("ecdhCurves", "ecdhCurves is not supported by Bowline yet: the platform's curves (X25519, P-256, P-384) are offered");
        }
        if (min is { } lo && max is { } hi && string.CompareOrdinal(lo, hi) > 0)
        {
            tls.Error("minProtocolVersion", $"minProtocolVersion {lo} is above maxProtocolVersion {hi}");
        }
        if (mode == ServerTlsMode.Simple && subjectAltNames.Count > 0)
        {
            tls.Warning("subjectAltNames", "subjectAltNames has no effect with SIMPLE TLS: clients are not asked for a certificate; use MUTUAL");
        }
        if (tls.ErrorCount != before)
        {
            return null;
        }
        return new ServerTlsSettings(mode)
        {
            CredentialName = credentialName,
            ServerCertificate = serverCertificate,
            PrivateKey = privateKey,
            CaCertificates = caCertificates,
            SubjectAltNames = subjectAltNames,
            MinProtocolVersion = min,
            MaxProtocolVersion = max,
            CipherSuites = ciphers,
        };
    }

    /// <summary>Istio's TLSProtocol as Envoy's name; null for TLS_AUTO or absent. TLS 1.0 and 1.1 are errors.</summary>
    private static string? Version(FieldReader tls, string field)
    {
        switch (tls.String(field))
        {
            case null or "TLS_AUTO":
                return null;
            case "TLSV1_2":
                return "TLSv1_2";
            case "TLSV1_3":
                return "TLSv1_3";
            case "TLSV1_0" or "TLSV1_1":
                tls.Error(field, "TLS 1.0 and 1.1 are not supported by Bowline's gateway; use TLSV1_2 or TLSV1_3");
                return null;
            case var other:
                tls.Error(field, $"'{other}' must be TLS_AUTO, TLSV1_0, TLSV1_1, TLSV1_2 or TLSV1_3");
                return null;
        }
    }

    /// <summary>Istio's FilterCipherSuites: invalid and duplicate names are warned about and left out, so the proxy never NACKs them.</summary>
    private static List<string> Ciphers(FieldReader tls, IReadOnlyList<string> names)
    {
        var kept = new List<string>();
        var invalid = new SortedSet<string>(StringComparer.Ordinal);
        var duplicate = new SortedSet<string>(StringComparer.Ordinal);
        var unsupported = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var name in names)
        {
            if (!IstioCipherSuites.Contains(name))
            {
                invalid.Add(name);
            }
            else if (Unsupported.Contains(name))
            {
                unsupported.Add(name);
            }
            else if (kept.Contains(name))
            {
                duplicate.Add(name);
            }
            else
            {
                kept.Add(name);
            }
        }
        if (invalid.Count > 0)
        {
            tls.Warning("cipherSuites", $"ignoring invalid cipher suites: [{string.Join(" ", invalid)}]; valid names are {string.Join(", ", IstioCipherSuites.Where(c => !Unsupported.Contains(c)))}");
        }
        if (duplicate.Count > 0)
        {
            tls.Warning("cipherSuites", $"ignoring duplicate cipher suites: [{string.Join(" ", duplicate)}]");
        }
        if (unsupported.Count > 0)
        {
            tls.Warning("cipherSuites", $"ignoring cipher suites Bowline's proxy does not offer: [{string.Join(" ", unsupported)}]");
        }
        if (names.Count > 0 && kept.Count == 0)
        {
            tls.Warning("cipherSuites", "no valid cipher suite is left, so the proxy's defaults apply");
        }
        return kept;
    }

    private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
