using Bowline.ControlPlane.Config;
using static Bowline.ControlPlane.Tests.Infrastructure.TestCredentials;

namespace Bowline.ControlPlane.Tests.Config;

/// <summary>Kubernetes TLS Secrets as gateway credentials: read with Istio's keys, and validated so a bad one is a diagnostic, not a failed handshake.</summary>
public sealed class SecretValidationTests
{
    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    private static readonly TimeProvider In2025 = new FixedTime(new DateTimeOffset(2025, 6, 1, 0, 0, 0, TimeSpan.Zero));

    private static ParsedFile Parse(string yaml) => ConfigFileParser.Parse("secret.yaml", yaml, In2025);

    [Fact]
    public void Parse_TlsSecretWithData_IsACredential()
    {
        var leaf = Leaf("httpbin.example.com");
        var parsed = Parse(TlsSecret("httpbin-credential", "istio-system", leaf, RootPem));

        Assert.Empty(parsed.Diagnostics);
        var secret = Assert.IsType<CredentialSecret>(Assert.Single(parsed.Resources));
        Assert.Equal(("istio-system", "httpbin-credential", "kubernetes.io/tls"), (secret.Meta.Namespace, secret.Meta.Name, secret.Type));
        Assert.Equal((leaf.Certificate, leaf.Key, RootPem), (secret.CertificateChain, secret.PrivateKey, secret.CaCertificates));
    }

    [Fact]
    public void Parse_GenericSecretWithStringData_UsesIstiosKeys_StringDataWinning()
    {
        var leaf = Leaf("httpbin.example.com");
        var other = Leaf("other.example.com");
        var yaml = $"""
            apiVersion: v1
            kind: Secret
            metadata: {"{"}name: httpbin-credential{"}"}
            data:
              cert: {Base64(other.Certificate)}
              key: {Base64(other.Key)}
            stringData:
              cert: |
            {Indent(leaf.Certificate)}
              key: |
            {Indent(leaf.Key)}
              cacert: |
            {Indent(RootPem)}
            """;

        var secret = Assert.IsType<CredentialSecret>(Assert.Single(Parse(yaml).Resources));

        Assert.Equal("Opaque", secret.Type);
        Assert.Equal(leaf.Certificate.Trim(), secret.CertificateChain!.Trim());
        Assert.Equal(RootPem.Trim(), secret.CaCertificates!.Trim());
    }

    [Fact]
    public void Parse_CaOnlySecret_IsACredentialWithoutCertificate()
    {
        var secret = Assert.IsType<CredentialSecret>(Assert.Single(Parse($"apiVersion: v1\nkind: Secret\nmetadata: {{name: httpbin-credential-cacert}}\ndata:\n  ca.crt: {Base64(RootPem)}\n").Resources));

        Assert.Null(secret.CertificateChain);
        Assert.Equal(RootPem, secret.CaCertificates);
    }

    public static TheoryData<string, string, string> Invalid
    {
        get
        {
            var leaf = Leaf("httpbin.example.com");
            var other = Leaf("other.example.com");
            return new()
            {
                { "data not base64", "data:\n  tls.crt: '%%%'\n  tls.key: x", "data" },
                { "tls type without key", $"type: kubernetes.io/tls\ndata:\n  tls.crt: {Base64(leaf.Certificate)}", "data" },
                { "certificate not PEM", $"data:\n  tls.crt: {Base64("hello")}\n  tls.key: {Base64(leaf.Key)}", "data" },
                { "key of another certificate", $"data:\n  tls.crt: {Base64(leaf.Certificate)}\n  tls.key: {Base64(other.Key)}", "data" },
                { "CA not PEM", $"data:\n  ca.crt: {Base64("not a certificate")}", "data" },
                { "unknown top-level field", $"spec: {{}}\ndata:\n  ca.crt: {Base64(RootPem)}", "spec" },
            };
        }
    }

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Parse_InvalidCredential_IsAnErrorOnTheField(string rule, string body, string field)
    {
        var parsed = Parse($"apiVersion: v1\nkind: Secret\nmetadata: {{name: httpbin-credential}}\n{body}\n");

        Assert.Empty(parsed.Resources);
        Assert.True(parsed.Diagnostics.Any(d => d.Severity == DiagnosticSeverity.Error && d.Field == field), $"{rule}: {string.Join("\n", parsed.Diagnostics)}");
    }

    [Fact]
    public void Parse_KeyOfAnotherCertificate_SaysWhichKeyAndTheFix()
    {
        var leaf = Leaf("httpbin.example.com");
        var parsed = Parse($"apiVersion: v1\nkind: Secret\nmetadata: {{name: c}}\ndata:\n  tls.crt: {Base64(leaf.Certificate)}\n  tls.key: {Base64(Leaf("other.example.com").Key)}\n");

        var error = Assert.Single(parsed.Diagnostics);
        Assert.StartsWith("data.tls.key does not load as the private key of the certificate in data.tls.crt", error.Message, StringComparison.Ordinal);
        Assert.EndsWith("give the PEM key (PKCS#8, EC or RSA) that belongs to the leaf", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_ExpiredCertificate_IsAWarning_AndStillServed()
    {
        var expired = Leaf("httpbin.example.com", new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero), new DateTimeOffset(2021, 1, 1, 0, 0, 0, TimeSpan.Zero));

        var parsed = Parse(TlsSecret("httpbin-credential", "istio-system", expired));

        Assert.Single(parsed.Resources);
        var warning = Assert.Single(parsed.Diagnostics);
        Assert.Equal(DiagnosticSeverity.Warning, warning.Severity);
        Assert.Contains("expired at 2021-01-01 00:00:00Z", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_SecretsThatAreNotCredentials_AreIgnoredWithAWarning()
    {
        var docker = Parse("apiVersion: v1\nkind: Secret\nmetadata: {name: registry}\ntype: kubernetes.io/dockerconfigjson\ndata: {.dockerconfigjson: e30=}\n");
        var opaque = Parse("apiVersion: v1\nkind: Secret\nmetadata: {name: password}\nstringData: {password: hunter2}\n");

        Assert.Empty(docker.Resources);
        Assert.Equal(DiagnosticSeverity.Warning, Assert.Single(docker.Diagnostics).Severity);
        Assert.Empty(opaque.Resources);
        var warning = Assert.Single(opaque.Diagnostics);
        Assert.Equal(DiagnosticSeverity.Warning, warning.Severity);
        Assert.DoesNotContain("hunter2", warning.ToString(), StringComparison.Ordinal);
    }

    private static string Indent(string pem) => string.Join("\n", pem.TrimEnd().Split('\n').Select(l => "    " + l));
}
