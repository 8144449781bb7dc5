using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Snapshots;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Listener.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Google.Protobuf;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// SDS over ADS, as Istio's SecretGen serves it (pilot/pkg/xds/sds.go): for every <c>kubernetes://&lt;name&gt;</c>
/// secret the proxy's listeners and clusters fetch over ADS, the credential from the Secret of that name in the
/// proxy's own namespace (never another's), as an <c>envoy.extensions.transport_sockets.tls.v3.Secret</c> with inline
/// PEM: a certificate and key, or for <c>&lt;name&gt;-cacert</c> a validation context with the CA bundle. A Secret
/// edit changes only these resources, so the proxy gets a new SDS version and no listener is rebuilt.
/// </summary>
internal static class SecretBuilder
{
    private const string KubernetesPrefix = "kubernetes://";

    public static void AddReferenced(ProxyNode node, ServiceIndex index, SnapshotBuilder snapshot)
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (Listener listener in snapshot.Of(Bowline.Xds.TypeUrls.Listener))
        {
            foreach (var chain in listener.FilterChains.Append(listener.DefaultFilterChain).OfType<FilterChain>())
            {
                Collect(chain.TransportSocket, names);
            }
        }
        foreach (Cluster cluster in snapshot.Of(Bowline.Xds.TypeUrls.Cluster))
        {
            Collect(cluster.TransportSocket, names);
            foreach (var match in cluster.TransportSocketMatches)
            {
                Collect(match.TransportSocket, names);
            }
        }
        var credentials = index.Config.Credentials;
        foreach (var name in names)
        {
            if (!name.StartsWith(KubernetesPrefix, StringComparison.Ordinal))
            {
                // kubernetes-gateway:// and configmap:// name other stores (Gateway API, ConfigMaps), which Bowline does not read.
                snapshot.Warn($"proxy {node.Id}: SDS secret {name} names a credential store Bowline does not have; only kubernetes://<Secret name> is served");
                continue;
            }
            var secretName = name[KubernetesPrefix.Length..];
            if (credentials.Certificate(node.Namespace, secretName) is { } certificate)
            {
                snapshot.AddSecret(CertificateSecret(name, certificate));
            }
            else if (secretName.EndsWith(CredentialSecrets.CaSuffix, StringComparison.Ordinal) && credentials.CaBundle(node.Namespace, secretName) is { } ca)
            {
                snapshot.AddSecret(CaSecret(name, ca.Pem));
            }
            else
            {
                snapshot.Warn(Missing(node, secretName));
            }
        }
    }

    private static string Missing(ProxyNode node, string secretName)
    {
        if (secretName.EndsWith(CredentialSecrets.CaSuffix, StringComparison.Ordinal))
        {
            var credential = secretName[..^CredentialSecrets.CaSuffix.Length];
            return $"proxy {node.Id}: no CA bundle for kubernetes://{secretName}: neither a Secret {node.Namespace}/{secretName} nor the Secret {node.Namespace}/{credential} holds ca.crt; MUTUAL TLS with credentialName {credential} refuses every handshake until one does";
        }
        return $"proxy {node.Id}: no Secret {node.Namespace}/{secretName} with tls.crt and tls.key for credentialName {secretName}; TLS with it refuses every handshake until the Secret exists in the proxy's namespace {node.Namespace} (Secrets of other namespaces are never served)";
    }

    /// <summary>The SDS names a transport socket fetches over ADS (the proxy's own agent serves the others).</summary>
    private static void Collect(TransportSocket? socket, SortedSet<string> names)
    {
        if (socket?.TypedConfig is not { } typed)
        {
            return;
        }
        CommonTlsContext? common = typed.TryUnpack<DownstreamTlsContext>(out var downstream) ? downstream.CommonTlsContext
            : typed.TryUnpack<UpstreamTlsContext>(out var upstream) ? upstream.CommonTlsContext
            : null;
        if (common is null)
        {
            return;
        }
        var configs = common.TlsCertificateSdsSecretConfigs
            .Append(common.ValidationContextSdsSecretConfig)
            .Append(common.CombinedValidationContext?.ValidationContextSdsSecretConfig);
        foreach (var config in configs.OfType<SdsSecretConfig>())
        {
            if (config.SdsConfig?.ConfigSourceSpecifierCase == ConfigSource.ConfigSourceSpecifierOneofCase.Ads)
            {
                names.Add(config.Name);
            }
        }
    }

    private static Secret CertificateSecret(string name, CredentialSecret credential) => new()
    {
        Name = name,
        TlsCertificate = new TlsCertificate
        {
            CertificateChain = new DataSource { InlineBytes = ByteString.CopyFromUtf8(credential.CertificateChain) },
            PrivateKey = new DataSource { InlineBytes = ByteString.CopyFromUtf8(credential.PrivateKey) },
        },
    };

    private static Secret CaSecret(string name, string pem) => new()
    {
        Name = name,
        ValidationContext = new CertificateValidationContext { TrustedCa = new DataSource { InlineBytes = ByteString.CopyFromUtf8(pem) } },
    };
}
