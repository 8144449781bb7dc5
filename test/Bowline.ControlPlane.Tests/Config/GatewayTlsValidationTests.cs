using Bowline.ControlPlane.Config;

namespace Bowline.ControlPlane.Tests.Config;

/// <summary>
/// Istio's Gateway <c>servers[].tls</c> rules (pkg/config/validation validateServer, validateTLSOptions), one row each:
/// rejected with an error on the named field, or accepted; and Bowline's refusals of what its gateway does not do.
/// </summary>
public sealed class GatewayTlsValidationTests
{
    private static string Gateway(string protocol, string tls, string hosts = "[httpbin.example.com]", int port = 443) => $$"""
        selector: {istio: ingressgateway}
        servers:
        - port: {number: {{port}}, name: https, protocol: {{protocol}}}
          hosts: {{hosts}}
        {{(tls.Length == 0 ? "" : "  tls: " + tls)}}
        """;

    public static TheoryData<string, string, string?> Specs => new()
    {
        { "SIMPLE with credentialName", Gateway("HTTPS", "{mode: SIMPLE, credentialName: httpbin-credential}"), null },
        { "SIMPLE with files", Gateway("HTTPS", "{mode: SIMPLE, serverCertificate: /etc/certs/tls.crt, privateKey: /etc/certs/tls.key}"), null },
        { "SIMPLE without a certificate", Gateway("HTTPS", "{mode: SIMPLE}"), "spec.servers[0].tls.serverCertificate" },
        { "SIMPLE with a certificate and no key", Gateway("HTTPS", "{mode: SIMPLE, serverCertificate: /etc/certs/tls.crt}"), "spec.servers[0].tls.privateKey" },
        { "MUTUAL with credentialName", Gateway("HTTPS", "{mode: MUTUAL, credentialName: httpbin-credential}"), null },
        { "MUTUAL with files and no CA", Gateway("HTTPS", "{mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem}"), "spec.servers[0].tls.caCertificates" },
        { "MUTUAL with files", Gateway("HTTPS", "{mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem, caCertificates: /ca.pem}"), null },
        { "OPTIONAL_MUTUAL with credentialName", Gateway("HTTPS", "{mode: OPTIONAL_MUTUAL, credentialName: c}"), null },
        { "ISTIO_MUTUAL", Gateway("HTTPS", "{mode: ISTIO_MUTUAL, subjectAltNames: [spiffe://cluster.local/ns/default/sa/client]}"), null },
        { "ISTIO_MUTUAL with credentialName", Gateway("HTTPS", "{mode: ISTIO_MUTUAL, credentialName: c}"), "spec.servers[0].tls.credentialName" },
        { "ISTIO_MUTUAL with a server certificate", Gateway("HTTPS", "{mode: ISTIO_MUTUAL, serverCertificate: /c.pem}"), "spec.servers[0].tls.serverCertificate" },
        { "two certificate sources", Gateway("HTTPS", "{mode: SIMPLE, credentialName: c, serverCertificate: /c.pem, privateKey: /k.pem}"), "spec.servers[0].tls.credentialName" },
        { "credentialName with a CA file", Gateway("HTTPS", "{mode: MUTUAL, credentialName: c, caCertificates: /ca.pem}"), "spec.servers[0].tls.credentialName" },
        { "credentialNames", Gateway("HTTPS", "{mode: SIMPLE, credentialNames: [rsa, ecdsa]}"), "spec.servers[0].tls.credentialNames" },
        { "HTTPS without tls", Gateway("HTTPS", ""), "spec.servers[0].tls" },
        { "HTTP with httpsRedirect", Gateway("HTTP", "{httpsRedirect: true}", port: 80), null },
        { "HTTP terminating TLS", Gateway("HTTP", "{mode: SIMPLE, credentialName: c}", port: 80), "spec.servers[0].tls" },
        { "HTTP with a server certificate", Gateway("HTTP", "{httpsRedirect: true, serverCertificate: /c.pem}", port: 80), "spec.servers[0].tls" },
        { "PASSTHROUGH on HTTPS", Gateway("HTTPS", "{mode: PASSTHROUGH}"), null },
        { "PASSTHROUGH on TLS", Gateway("TLS", "{mode: PASSTHROUGH}"), null },
        { "the default mode is PASSTHROUGH (a certificate there is only a warning)", Gateway("HTTPS", "{credentialName: c}"), null },
        { "AUTO_PASSTHROUGH", Gateway("TLS", "{mode: AUTO_PASSTHROUGH}", hosts: "['*.local']"), null },
        { "unknown mode", Gateway("HTTPS", "{mode: STRICT}"), "spec.servers[0].tls.mode" },
        { "TLS terminated for tcp routes", Gateway("TLS", "{mode: SIMPLE, credentialName: c}"), null },
        { "TLS without tls settings", Gateway("TLS", ""), "spec.servers[0].tls" },
        { "TCP", Gateway("TCP", "", port: 31400), null },
        { "MONGO is TCP", Gateway("MONGO", "", port: 27017), null },
        { "TCP with tls settings", Gateway("TCP", "{mode: SIMPLE, credentialName: c}", port: 31400), "spec.servers[0].tls" },
        { "UDP", Gateway("UDP", "", port: 53), "spec.servers[0].port.protocol" },
        { "min above max", Gateway("HTTPS", "{mode: SIMPLE, credentialName: c, minProtocolVersion: TLSV1_3, maxProtocolVersion: TLSV1_2}"), "spec.servers[0].tls.minProtocolVersion" },
        { "TLS 1.1", Gateway("HTTPS", "{mode: SIMPLE, credentialName: c, minProtocolVersion: TLSV1_1}"), "spec.servers[0].tls.minProtocolVersion" },
        { "unknown version", Gateway("HTTPS", "{mode: SIMPLE, credentialName: c, maxProtocolVersion: TLSV2}"), "spec.servers[0].tls.maxProtocolVersion" },
        { "versions", Gateway("HTTPS", "{mode: SIMPLE, credentialName: c, minProtocolVersion: TLSV1_2, maxProtocolVersion: TLSV1_3}"), null },
        { "CRL with credentialName", Gateway("HTTPS", "{mode: MUTUAL, credentialName: c, caCrl: /crl.pem}"), "spec.servers[0].tls.caCrl" },
        { "CRL with SIMPLE", Gateway("HTTPS", "{mode: SIMPLE, serverCertificate: /c.pem, privateKey: /k.pem, caCrl: /crl.pem}"), "spec.servers[0].tls.caCrl" },
        { "SPKI pinning", Gateway("HTTPS", "{mode: MUTUAL, credentialName: c, verifyCertificateSpki: [abc]}"), "spec.servers[0].tls.verifyCertificateSpki" },
        { "unknown tls field", Gateway("HTTPS", "{mode: SIMPLE, credentialName: c, credential: c}"), "spec.servers[0].tls.credential" },
        { "duplicate port names", "selector: {istio: ingressgateway}\nservers:\n- {port: {number: 443, name: https, protocol: HTTPS}, hosts: [a.example.com], tls: {mode: SIMPLE, credentialName: a}}\n- {port: {number: 443, name: https, protocol: HTTPS}, hosts: [b.example.com], tls: {mode: SIMPLE, credentialName: b}}", "spec.servers[1].port.name" },
    };

    [Theory]
    [MemberData(nameof(Specs))]
    public void Parse_GatewayTls_FollowsIstiosRules(string rule, string spec, string? errorField) =>
        ValidationRows.Check("gw.yaml", ValidationRows.Resource("networking.istio.io/v1", "Gateway", spec, "mygateway"), rule, errorField);

    [Fact]
    public void Parse_SimpleWithCredential_KeepsEveryField()
    {
        var parsed = ValidationRows.Check("gw.yaml", ValidationRows.Resource("networking.istio.io/v1", "Gateway",
            Gateway("HTTPS", "{mode: SIMPLE, credentialName: httpbin-credential, minProtocolVersion: TLSV1_2, maxProtocolVersion: TLSV1_3, cipherSuites: [ECDHE-RSA-AES128-GCM-SHA256, ECDHE-ECDSA-AES256-GCM-SHA384]}"), "mygateway"), "simple", null);

        var server = Assert.Single(Assert.IsType<Gateway>(Assert.Single(parsed.Resources)).Servers);
        Assert.Equal(new ServerTlsSettings(ServerTlsMode.Simple)
        {
            CredentialName = "httpbin-credential",
            MinProtocolVersion = "TLSv1_2",
            MaxProtocolVersion = "TLSv1_3",
            CipherSuites = server.Tls!.CipherSuites,
            SubjectAltNames = server.Tls.SubjectAltNames,
        }, server.Tls);
        Assert.Equal(["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"], server.Tls.CipherSuites);
        Assert.True(server.TerminatesTls);
    }

    [Fact]
    public void Parse_InvalidAndDuplicateCipherSuites_AreWarnedAboutAndLeftOut()
    {
        var parsed = ValidationRows.Check("gw.yaml", ValidationRows.Resource("networking.istio.io/v1", "Gateway",
            Gateway("HTTPS", "{mode: SIMPLE, credentialName: c, cipherSuites: [ECDHE-RSA-AES128-GCM-SHA256, NOT-A-CIPHER, ECDHE-RSA-AES128-GCM-SHA256, DES-CBC3-SHA]}"), "mygateway"), "ciphers", null);

        var server = Assert.Single(Assert.IsType<Gateway>(Assert.Single(parsed.Resources)).Servers);
        Assert.Equal(["ECDHE-RSA-AES128-GCM-SHA256"], server.Tls!.CipherSuites);
        var warnings = parsed.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Warning).Select(d => d.Message).ToList();
        Assert.Contains(warnings, w => w.StartsWith("ignoring invalid cipher suites: [NOT-A-CIPHER]", StringComparison.Ordinal));
        Assert.Contains("ignoring duplicate cipher suites: [ECDHE-RSA-AES128-GCM-SHA256]", warnings);
        Assert.Contains("ignoring cipher suites Bowline's proxy does not offer: [DES-CBC3-SHA]", warnings);
    }

    [Fact]
    public void Parse_HttpsRedirectOnAnHttpsServer_IsAWarning()
    {
        var parsed = ValidationRows.Check("gw.yaml", ValidationRows.Resource("networking.istio.io/v1", "Gateway",
            Gateway("HTTPS", "{mode: SIMPLE, credentialName: c, httpsRedirect: true}"), "mygateway"), "redirect on https", null);

        Assert.Contains(parsed.Diagnostics, d => d is { Severity: DiagnosticSeverity.Warning, Field: "spec.servers[0].tls.httpsRedirect" });
    }

    [Fact]
    public void Parse_CertificateOnAPassthroughServer_IsAWarningThatItDoesNothing()
    {
        var parsed = ConfigFileParser.Parse("gw.yaml", ValidationRows.Resource("networking.istio.io/v1", "Gateway", Gateway("HTTPS", "{mode: PASSTHROUGH, credentialName: c}")));

        var warning = Assert.Single(parsed.Diagnostics);
        Assert.Equal(DiagnosticSeverity.Warning, warning.Severity);
        Assert.Equal("spec.servers[0].tls.credentialName", warning.Field);
        Assert.Contains("does not terminate TLS", warning.Message, StringComparison.Ordinal);
        var server = Assert.IsType<Gateway>(Assert.Single(parsed.Resources)).Servers.Single();
        Assert.Equal(GatewayServerKind.Passthrough, server.Kind);
    }

    [Theory]
    [InlineData("HTTP", "", "Http")]
    [InlineData("HTTPS", "{mode: SIMPLE, credentialName: c}", "Https")]
    [InlineData("HTTPS", "{mode: PASSTHROUGH}", "Passthrough")]
    [InlineData("TLS", "{mode: MUTUAL, credentialName: c}", "TerminatedTcp")]
    [InlineData("TLS", "{mode: AUTO_PASSTHROUGH}", "AutoPassthrough")]
    [InlineData("TCP", "", "Tcp")]
    [InlineData("REDIS", "", "Tcp")]
    public void Parse_ServerKind_FollowsProtocolAndTlsMode(string protocol, string tls, string kind)
    {
        var expected = Enum.Parse<GatewayServerKind>(kind);
        var parsed = ConfigFileParser.Parse("gw.yaml", ValidationRows.Resource("networking.istio.io/v1", "Gateway", Gateway(protocol, tls)));

        Assert.DoesNotContain(parsed.Diagnostics, d => d.Severity == DiagnosticSeverity.Error);
        Assert.Equal(expected, Assert.IsType<Gateway>(Assert.Single(parsed.Resources)).Servers.Single().Kind);
    }

    [Fact]
    public void Parse_ErrorMessages_NameTheFix()
    {
        var parsed = ConfigFileParser.Parse("gw.yaml", ValidationRows.Resource("networking.istio.io/v1", "Gateway", Gateway("HTTPS", "{mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem}"), "mygateway"));

        var error = Assert.Single(parsed.Diagnostics, d => d.Severity == DiagnosticSeverity.Error);
        Assert.Equal("error: gw.yaml:10: Gateway default/mygateway field spec.servers[0].tls.caCertificates: MUTUAL TLS requires a client CA bundle: give caCertificates (a PEM file path), or use a credentialName whose Secret holds ca.crt", error.ToString());
    }
}
