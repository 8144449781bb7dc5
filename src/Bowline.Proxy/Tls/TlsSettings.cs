using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Routing;
using Envoy.Extensions.TransportSockets.Tls.V3;

namespace Bowline.Proxy.Tls;

/// <summary>Where a TLS context's certificate or trust bundle comes from: an SDS secret by name, or inline/file PEM.</summary>
/// <remarks>
/// Istio's agent serves two kinds of SDS names itself: <c>file-root:system</c> (the platform's trust store, for
/// DestinationRule SIMPLE/MUTUAL without caCertificates) and <c>file-root:&lt;path&gt;</c> (a PEM bundle on disk); both
/// are resolved here, once per compile.
/// </remarks>
internal sealed record SecretSource(string? SdsName, CertificateSecret? InlineCertificate, X509Certificate2Collection? InlineBundle, bool SystemRoots = false)
{
    public CertificateSecret? Certificate(SecretStore store) => InlineCertificate ?? (SdsName is { } name ? store.Certificate(name) : null);

    /// <summary>The roots to verify against; null when not (yet) available. Empty with <see cref="SystemRoots"/>: the platform's store applies.</summary>
    public X509Certificate2Collection? Bundle(SecretStore store) => SystemRoots ? [] : InlineBundle ?? (SdsName is { } name ? store.TrustBundle(name) : null);

    public static SecretSource ForValidation(string sdsName, string where)
    {
        const string FileRoot = "file-root:";
        if (!sdsName.StartsWith(FileRoot, StringComparison.Ordinal))
        {
            return new SecretSource(sdsName, null, null);
        }
        var path = sdsName[FileRoot.Length..];
        if (path == "system")
        {
            return new SecretSource(sdsName, null, null, SystemRoots: true);
        }
        var bundle = new X509Certificate2Collection();
        try
        {
            bundle.ImportFromPemFile(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            throw new ProxyConfigException($"{where}: SDS secret {sdsName}: cannot read the CA bundle {path}: {e.Message}");
        }
        return new SecretSource(sdsName, null, bundle);
    }

    public string Describe() => SdsName is { } name ? $"SDS secret '{name}'" : "the inline certificate";
}

/// <summary>
/// What both sides of a TLS context share, compiled from <c>common_tls_context</c>: the certificate to present, the
/// roots to verify the peer against, the SAN matchers (Envoy's <c>match_typed_subject_alt_names</c>), protocol
/// versions, cipher suites and ALPN. Immutable; secrets are read from the <see cref="SecretStore"/> per handshake.
/// </summary>
internal sealed class TlsSettings
{
    private TlsSettings(SecretSource? certificate, SecretSource? validation, SanMatcher[] sanMatchers, SslProtocols protocols, CipherSuitesPolicy? ciphers, List<SslApplicationProtocol> alpn)
    {
        CertificateSource = certificate;
        ValidationSource = validation;
        SanMatchers = sanMatchers;
        Protocols = protocols;
        Ciphers = ciphers;
        Alpn = alpn;
    }

    public SecretSource? CertificateSource { get; }

    public SecretSource? ValidationSource { get; }

    public SanMatcher[] SanMatchers { get; }

    public SslProtocols Protocols { get; }

    public CipherSuitesPolicy? Ciphers { get; }

    public List<SslApplicationProtocol> Alpn { get; }

    /// <summary>
    /// How a peer's chain is built for one handshake: against exactly <paramref name="roots"/>, or the platform's store
    /// (<c>file-root:system</c>, or no validation context at all), with no revocation checks (Envoy's default) and never
    /// a download: a chain build that fetched a missing intermediate would block the event thread the handshake runs on,
    /// for as long as the URL the peer's own certificate names takes to answer. Envoy does not fetch either.
    /// </summary>
    public X509ChainPolicy ChainPolicy(X509Certificate2Collection? roots)
    {
        if (roots is null || ValidationSource?.SystemRoots == true)
        {
            return new X509ChainPolicy { TrustMode = X509ChainTrustMode.System, RevocationMode = X509RevocationMode.NoCheck, DisableCertificateDownloads = true };
        }
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck, DisableCertificateDownloads = true };
        policy.CustomTrustStore.AddRange(roots);
        return policy;
    }

    public static TlsSettings Compile(CommonTlsContext? common, string where)
    {
        common ??= new CommonTlsContext();
        XdsFields.Check(common, where + " common_tls_context", "tls_params", "tls_certificates", "tls_certificate_sds_secret_configs", "validation_context",
            "validation_context_sds_secret_config", "combined_validation_context", "alpn_protocols");
        if (common.TlsCertificates.Count + common.TlsCertificateSdsSecretConfigs.Count > 1)
        {
            throw new ProxyConfigException($"{where}: more than one certificate (tls_certificates and tls_certificate_sds_secret_configs); Bowline presents one");
        }
        SecretSource? certificate = null;
        if (common.TlsCertificates.Count == 1)
        {
            certificate = new SecretSource(null, InlineCertificate(common.TlsCertificates[0], where + " tls_certificates"), null);
        }
        else if (common.TlsCertificateSdsSecretConfigs.Count == 1)
        {
            certificate = new SecretSource(SdsName(common.TlsCertificateSdsSecretConfigs[0], where + " tls_certificate_sds_secret_configs"), null, null);
        }

        SecretSource? validation = null;
        var matchers = Array.Empty<SanMatcher>();
        switch (common.ValidationContextTypeCase)
        {
            case CommonTlsContext.ValidationContextTypeOneofCase.ValidationContext:
                (validation, matchers) = Validation(common.ValidationContext, where + " validation_context");
                break;
            case CommonTlsContext.ValidationContextTypeOneofCase.ValidationContextSdsSecretConfig:
                validation = SecretSource.ForValidation(SdsName(common.ValidationContextSdsSecretConfig, where + " validation_context_sds_secret_config"), where);
                break;
            case CommonTlsContext.ValidationContextTypeOneofCase.CombinedValidationContext:
                var combined = common.CombinedValidationContext;
                XdsFields.Check(combined, where + " combined_validation_context", "default_validation_context", "validation_context_sds_secret_config");
                (var inline, matchers) = Validation(combined.DefaultValidationContext, where + " default_validation_context");
                validation = combined.ValidationContextSdsSecretConfig is { } sds
                    ? SecretSource.ForValidation(SdsName(sds, where + " combined_validation_context"), where)
                    : inline;
                break;
        }

        var (protocols, ciphers) = Parameters(common.TlsParams, where);
        var alpn = common.AlpnProtocols.Select(p => new SslApplicationProtocol(p)).ToList();
        return new TlsSettings(certificate, validation, matchers, protocols, ciphers, alpn);
    }

    private static (SecretSource? Source, SanMatcher[] Matchers) Validation(CertificateValidationContext? context, string where)
    {
        if (context is null)
        {
            return (null, []);
        }
        // The deprecated untyped match_subject_alt_names is NACKed by the field check: Istio sends the typed form.
        XdsFields.Check(context, where, "trusted_ca", "match_typed_subject_alt_names");
        var matchers = context.MatchTypedSubjectAltNames.Select(m => SanMatcher.From(m, where)).ToArray();
        SecretSource? source = null;
        if (context.TrustedCa is { } ca)
        {
            var bundle = new X509Certificate2Collection();
            bundle.ImportFromPem(DataSources.Read(ca, where + " trusted_ca"));
            if (bundle.Count == 0)
            {
                throw new ProxyConfigException($"{where}: trusted_ca holds no PEM certificate");
            }
            source = new SecretSource(null, null, bundle);
        }
        return (source, matchers);
    }

    private static string SdsName(SdsSecretConfig config, string where)
    {
        XdsFields.Check(config, where, "name", "sds_config");
        if (config.Name.Length == 0)
        {
            throw new ProxyConfigException($"{where}: an SDS secret needs a name");
        }
        // Any config source is accepted: secrets reach the proxy's SecretStore from its agent (default, ROOTCA) or over ADS.
        return config.Name;
    }

    /// <summary>A PEM chain (leaf first) and its key, loaded once; a chain and key that do not belong together are a NACK.</summary>
    internal static CertificateSecret InlineCertificate(TlsCertificate certificate, string where)
    {
        XdsFields.Check(certificate, where, "certificate_chain", "private_key");
        var chainPem = DataSources.Read(certificate.CertificateChain, where + " certificate_chain");
        var keyPem = DataSources.Read(certificate.PrivateKey, where + " private_key");
        try
        {
            var leaf = X509Certificate2.CreateFromPem(chainPem, keyPem);
            var all = new X509Certificate2Collection();
            all.ImportFromPem(chainPem);
            var chain = new X509Certificate2Collection();
            foreach (var extra in all.Skip(1))
            {
                chain.Add(extra);
            }
            return new CertificateSecret(leaf, chain);
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            // ArgumentException: a key that loads but belongs to another certificate.
            throw new ProxyConfigException($"{where}: the certificate chain and private key do not load ({e.Message}); give a PEM chain, leaf first, and its PEM key");
        }
    }

    private static (SslProtocols, CipherSuitesPolicy?) Parameters(TlsParameters? parameters, string where)
    {
        if (parameters is null)
        {
            return (SslProtocols.Tls12 | SslProtocols.Tls13, null);
        }
        XdsFields.Check(parameters, where + " tls_params", "tls_minimum_protocol_version", "tls_maximum_protocol_version", "cipher_suites", "ecdh_curves");
        var min = parameters.TlsMinimumProtocolVersion switch
        {
            TlsParameters.Types.TlsProtocol.TlsAuto or TlsParameters.Types.TlsProtocol.Tlsv12 => 12,
            TlsParameters.Types.TlsProtocol.Tlsv13 => 13,
            var other => throw new ProxyConfigException($"{where}: tls_minimum_protocol_version {other} is not supported; TLS 1.2 is the oldest Bowline speaks"),
        };
        var max = parameters.TlsMaximumProtocolVersion switch
        {
            TlsParameters.Types.TlsProtocol.TlsAuto or TlsParameters.Types.TlsProtocol.Tlsv13 => 13,
            TlsParameters.Types.TlsProtocol.Tlsv12 => 12,
            var other => throw new ProxyConfigException($"{where}: tls_maximum_protocol_version {other} is not supported; use TLSv1_2 or TLSv1_3"),
        };
        if (min > max)
        {
            throw new ProxyConfigException($"{where}: tls_minimum_protocol_version is above tls_maximum_protocol_version");
        }
        var protocols = (min <= 12 ? SslProtocols.Tls12 : SslProtocols.None) | (max >= 13 ? SslProtocols.Tls13 : SslProtocols.None);
        CipherSuitesPolicy? ciphers = null;
        if (parameters.CipherSuites.Count > 0)
        {
            ciphers = CipherSuites.Policy(parameters.CipherSuites, where + " tls_params.cipher_suites");
        }
        // ecdh_curves: the platform's defaults (X25519, P-256, P-384) are what Istio configures; the list is not narrowed.
        return (protocols, ciphers);
    }
}

/// <summary>One compiled <c>SubjectAltNameMatcher</c>: a SAN type (null for the legacy untyped matcher, any type) and a string matcher.</summary>
internal sealed record SanMatcher(SubjectAltNameMatcher.Types.SanType? Type, StringMatcher Matcher)
{
    public static SanMatcher From(SubjectAltNameMatcher matcher, string where)
    {
        XdsFields.Check(matcher, where + " match_typed_subject_alt_names", "san_type", "matcher");
        if (matcher.SanType is not (SubjectAltNameMatcher.Types.SanType.Uri or SubjectAltNameMatcher.Types.SanType.Dns))
        {
            throw new ProxyConfigException($"{where}: match_typed_subject_alt_names san_type {matcher.SanType} is not supported; use URI or DNS");
        }
        return new SanMatcher(matcher.SanType, StringMatcher.From(matcher.Matcher, where));
    }

    public bool Matches(List<string> uris, List<string> dnsNames) => Type switch
    {
        SubjectAltNameMatcher.Types.SanType.Uri => uris.Any(Matcher.Matches),
        SubjectAltNameMatcher.Types.SanType.Dns => dnsNames.Any(Matcher.Matches),
        _ => uris.Any(Matcher.Matches) || dnsNames.Any(Matcher.Matches),
    };
}

/// <summary>Envoy's <c>DataSource</c> for PEM: inline string or bytes, or a file read at compile time.</summary>
internal static class DataSources
{
    public static string Read(Envoy.Config.Core.V3.DataSource? source, string where)
    {
        switch (source?.SpecifierCase)
        {
            case Envoy.Config.Core.V3.DataSource.SpecifierOneofCase.InlineString:
                return source.InlineString;
            case Envoy.Config.Core.V3.DataSource.SpecifierOneofCase.InlineBytes:
                return source.InlineBytes.ToStringUtf8();
            case Envoy.Config.Core.V3.DataSource.SpecifierOneofCase.Filename:
                try
                {
                    return File.ReadAllText(source.Filename);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new ProxyConfigException($"{where}: cannot read {source.Filename}: {e.Message}");
                }
            default:
                throw new ProxyConfigException($"{where}: give inline_string, inline_bytes or filename");
        }
    }
}

/// <summary>Envoy's (BoringSSL's) cipher suite names for TLS 1.2, mapped to .NET's; TLS 1.3 suites are always on, as in Envoy.</summary>
internal static class CipherSuites
{
    private static readonly Dictionary<string, TlsCipherSuite> Names = new(StringComparer.Ordinal)
    {
        ["ECDHE-ECDSA-AES128-GCM-SHA256"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ["ECDHE-RSA-AES128-GCM-SHA256"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ["ECDHE-ECDSA-AES256-GCM-SHA384"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ["ECDHE-RSA-AES256-GCM-SHA384"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ["ECDHE-ECDSA-CHACHA20-POLY1305"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ["ECDHE-RSA-CHACHA20-POLY1305"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ["AES128-GCM-SHA256"] = TlsCipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256,
        ["AES256-GCM-SHA384"] = TlsCipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384,
        ["ECDHE-ECDSA-AES128-SHA"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
        ["ECDHE-RSA-AES128-SHA"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
        ["ECDHE-ECDSA-AES256-SHA"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
        ["ECDHE-RSA-AES256-SHA"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
        ["AES128-SHA"] = TlsCipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA,
        ["AES256-SHA"] = TlsCipherSuite.TLS_RSA_WITH_AES_256_CBC_SHA,
    };

    private static readonly TlsCipherSuite[] Tls13 = [TlsCipherSuite.TLS_AES_128_GCM_SHA256, TlsCipherSuite.TLS_AES_256_GCM_SHA384, TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256];

    public static CipherSuitesPolicy Policy(IEnumerable<string> names, string where)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new ProxyConfigException($"{where}: cipher suites cannot be chosen on Windows (SChannel); remove cipher_suites");
        }
        var suites = new List<TlsCipherSuite>(Tls13);
        foreach (var entry in names)
        {
            // BoringSSL's equal-preference groups: [A|B].
            foreach (var name in entry.Trim('[', ']').Split('|'))
            {
                if (!Names.TryGetValue(name, out var suite))
                {
                    throw new ProxyConfigException($"{where}: cipher suite '{name}' is not supported; use one of {string.Join(", ", Names.Keys)}");
                }
                suites.Add(suite);
            }
        }
        return new CipherSuitesPolicy(suites);
    }
}
