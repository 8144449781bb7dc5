using System.Globalization;
using System.Text;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Stats;
using Bowline.Proxy.Xds;
using Bowline.Xds;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Bowline.Proxy.Admin;

/// <summary>The admin interface on loopback, with Envoy's paths and formats so an Envoy operator's habits carry over.</summary>
internal static class AdminEndpoints
{
    public static void Map(IEndpointRouteBuilder app, SnapshotHolder snapshots, ConfigApplier applier, ProxyStats stats, Tls.SecretStore secrets, TimeProvider time, AccessLogs.AccessLogFiles accessLogs)
    {
        // Envoy's log rotation hook: every access log file is reopened before its next write.
        app.MapPost("/reopen_logs", () =>
        {
            accessLogs.ReopenAll();
            return Results.Text("OK\n");
        });
        app.MapGet("/certs", () => Results.Text(Certificates(secrets, time), "application/json"));
        app.MapGet("/ready", () => applier.Initialized ? Results.Text("LIVE\n") : Results.Text("PRE_INITIALIZING\n", statusCode: 503));
        app.MapGet("/config_dump", () => Results.Text(XdsJson.Format(ConfigDumpBuilder.Build(snapshots.Current)), "application/json"));
        app.MapGet("/stats", () => Results.Text(stats.Render()));
        app.MapGet("/listeners", () => Results.Text(string.Concat(snapshots.Current.Listeners.Values.OrderBy(l => l.Name, StringComparer.Ordinal)
            .Select(l => $"{l.Name}::{string.Join(",", l.Addresses)}\n"))));
        app.MapGet("/clusters", () => Results.Text(Clusters(snapshots.Current)));
    }

    /// <summary>Envoy's <c>/clusters</c> text: one <c>cluster::host::stat::value</c> line per fact.</summary>
    private static string Clusters(ProxySnapshot snapshot)
    {
        var text = new StringBuilder();
        foreach (var cluster in snapshot.Clusters.Values.OrderBy(c => c.Name, StringComparer.Ordinal))
        {
            if (cluster.Current is not { } current)
            {
                continue;
            }
            var limits = current.Config.Limits;
            text.Append(CultureInfo.InvariantCulture, $"{cluster.Name}::lb_policy::{current.Config.Balancer.Name}\n");
            text.Append(CultureInfo.InvariantCulture, $"{cluster.Name}::protocol::{current.Config.Protocol}\n");
            text.Append(CultureInfo.InvariantCulture, $"{cluster.Name}::default_priority::max_connections::{limits.MaxConnections}\n");
            text.Append(CultureInfo.InvariantCulture, $"{cluster.Name}::default_priority::max_pending_requests::{limits.MaxPendingRequests}\n");
            text.Append(CultureInfo.InvariantCulture, $"{cluster.Name}::default_priority::max_requests::{limits.MaxRequests}\n");
            text.Append(CultureInfo.InvariantCulture, $"{cluster.Name}::default_priority::max_retries::{limits.MaxRetries}\n");
            foreach (var endpoint in current.Hosts.All)
            {
                var host = $"{cluster.Name}::{endpoint.Endpoint}";
                text.Append(CultureInfo.InvariantCulture, $"{host}::rq_active::{endpoint.Endpoint.ActiveRequests}\n");
                text.Append(CultureInfo.InvariantCulture, $"{host}::weight::{endpoint.Weight}\n");
                text.Append(CultureInfo.InvariantCulture, $"{host}::priority::{endpoint.Priority}\n");
                text.Append(CultureInfo.InvariantCulture, $"{host}::health_flags::{HealthFlags(endpoint)}\n");
            }
        }
        return text.ToString();
    }

    /// <summary>Envoy's health_flags: <c>healthy</c>, or every reason the host takes no traffic.</summary>
    private static string HealthFlags(Clusters.WeightedEndpoint endpoint)
    {
        var flags = (endpoint.Healthy ? "" : "/failed_eds_health") + (endpoint.Endpoint.Ejected ? "/failed_outlier_check" : "") + (endpoint.Endpoint.FailedActiveHealthCheck ? "/failed_active_hc" : "");
        return flags.Length == 0 ? "healthy" : flags;
    }

    /// <summary>Envoy's <c>/certs</c> shape: per certificate secret its chain (serial, SANs, validity), and the trust bundles.</summary>
    private static string Certificates(Tls.SecretStore secrets, TimeProvider time)
    {
        using var buffer = new MemoryStream();
        using (var json = new System.Text.Json.Utf8JsonWriter(buffer, new System.Text.Json.JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartArray("certificates");
            foreach (var (name, secret) in secrets.Certificates.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                json.WriteStartObject();
                json.WriteString("name", name);
                json.WriteStartArray("ca_cert");
                foreach (var root in secrets.TrustBundle(Identity.WorkloadAgent.TrustBundleSecretName) ?? [])
                {
                    WriteCertificate(json, root, time);
                }
                json.WriteEndArray();
                json.WriteStartArray("cert_chain");
                WriteCertificate(json, secret.Leaf, time);
                foreach (var intermediate in secret.Chain)
                {
                    WriteCertificate(json, intermediate, time);
                }
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteCertificate(System.Text.Json.Utf8JsonWriter json, System.Security.Cryptography.X509Certificates.X509Certificate2 certificate, TimeProvider time)
    {
        json.WriteStartObject();
        json.WriteString("serial_number", certificate.SerialNumber.ToLowerInvariant());
        json.WriteString("subject", certificate.Subject);
        json.WriteStartArray("subject_alt_names");
        var (uris, dnsNames) = Tls.SpiffeId.SubjectAltNames(certificate);
        foreach (var uri in uris)
        {
            json.WriteStartObject();
            json.WriteString("uri", uri);
            json.WriteEndObject();
        }
        foreach (var dns in dnsNames)
        {
            json.WriteStartObject();
            json.WriteString("dns", dns);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteString("valid_from", certificate.NotBefore.ToUniversalTime().ToString("o", System.Globalization.CultureInfo.InvariantCulture));
        json.WriteString("expiration_time", certificate.NotAfter.ToUniversalTime().ToString("o", System.Globalization.CultureInfo.InvariantCulture));
        json.WriteNumber("days_until_expiration", Math.Max(0, (int)(certificate.NotAfter.ToUniversalTime() - time.GetUtcNow().UtcDateTime).TotalDays));
        json.WriteEndObject();
    }
}
