using System.Security.Cryptography.X509Certificates;
using Bowline.Proxy.Configuration;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Listener.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;

namespace Bowline.Proxy.Tls;

/// <summary>One SDS <c>Secret</c> from the control plane, compiled: a certificate with its key, or a trust bundle.</summary>
internal sealed record CompiledSecret(string Name, CertificateSecret? Certificate, X509Certificate2Collection? Bundle);

/// <summary>
/// SDS over ADS: which secrets the proxy fetches from the control plane (every SDS name a listener's or cluster's
/// TLS context gives an <c>ads</c> config source; the agent's own <c>default</c> and <c>ROOTCA</c> come from
/// <c>sds-grpc</c>), and compiling the <c>envoy.extensions.transport_sockets.tls.v3.Secret</c> resources that arrive.
/// A secret that does not load is a NACK naming it, and the store keeps what it had.
/// </summary>
internal static class SdsSecrets
{
    /// <summary>The SDS names the proxy's agent serves itself; the control plane must never replace them.</summary>
    public static bool IsLocal(string name) => name is Identity.WorkloadAgent.CertificateSecretName or Identity.WorkloadAgent.TrustBundleSecretName || name.StartsWith("file-root:", StringComparison.Ordinal);

    public static IReadOnlySet<string> Referenced(IEnumerable<Listener> listeners, IEnumerable<Cluster> clusters)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var listener in listeners)
        {
            foreach (var chain in listener.FilterChains.Append(listener.DefaultFilterChain).OfType<FilterChain>())
            {
                Collect(chain.TransportSocket, names);
            }
        }
        foreach (var cluster in clusters)
        {
            Collect(cluster.TransportSocket, names);
            foreach (var match in cluster.TransportSocketMatches)
            {
                Collect(match.TransportSocket, names);
            }
        }
        names.RemoveWhere(IsLocal);
        return names;
    }

    public static CompiledSecret Compile(Secret secret)
    {
        var where = $"SDS secret {secret.Name}";
        XdsFields.Check(secret, where, "name", "tls_certificate", "validation_context");
        if (IsLocal(secret.Name))
        {
            throw new ProxyConfigException($"{where}: this name belongs to the proxy's own agent (its workload certificate, trust bundle or a file); the control plane cannot replace it");
        }
        switch (secret.TypeCase)
        {
            case Secret.TypeOneofCase.TlsCertificate:
                return new CompiledSecret(secret.Name, TlsSettings.InlineCertificate(secret.TlsCertificate, where + " tls_certificate"), null);
            case Secret.TypeOneofCase.ValidationContext:
                XdsFields.Check(secret.ValidationContext, where + " validation_context", "trusted_ca");
                var bundle = new X509Certificate2Collection();
                try
                {
                    bundle.ImportFromPem(DataSources.Read(secret.ValidationContext.TrustedCa, where + " validation_context.trusted_ca"));
                }
                catch (System.Security.Cryptography.CryptographicException e)
                {
                    throw new ProxyConfigException($"{where}: validation_context.trusted_ca is not a PEM bundle: {e.Message}");
                }
                if (bundle.Count == 0)
                {
                    throw new ProxyConfigException($"{where}: validation_context.trusted_ca holds no PEM certificate");
                }
                return new CompiledSecret(secret.Name, null, bundle);
            default:
                throw new ProxyConfigException($"{where}: a Secret needs tls_certificate or validation_context; {secret.TypeCase} is not supported");
        }
    }

    private static void Collect(TransportSocket? socket, HashSet<string> names)
    {
        if (socket?.TypedConfig is not { } typed)
        {
            return;
        }
        var common = typed.TryUnpack<DownstreamTlsContext>(out var downstream) ? downstream.CommonTlsContext
            : typed.TryUnpack<UpstreamTlsContext>(out var upstream) ? upstream.CommonTlsContext
            : null;
        if (common is null)
        {
            return;
        }
        foreach (var config in common.TlsCertificateSdsSecretConfigs.Append(common.ValidationContextSdsSecretConfig).Append(common.CombinedValidationContext?.ValidationContextSdsSecretConfig).OfType<SdsSecretConfig>())
        {
            if (config.SdsConfig?.ConfigSourceSpecifierCase == ConfigSource.ConfigSourceSpecifierOneofCase.Ads && config.Name.Length > 0)
            {
                names.Add(config.Name);
            }
        }
    }
}
