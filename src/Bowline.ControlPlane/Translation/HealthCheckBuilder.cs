using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Snapshots;
using Envoy.Config.Cluster.V3;
using Envoy.Type.V3;
using Google.Protobuf.WellKnownTypes;
using EnvoyHealthCheck = Envoy.Config.Core.V3.HealthCheck;

namespace Bowline.ControlPlane.Translation;

/// <summary>Turns Bowline HealthChecks into Envoy's <c>Cluster.health_checks</c> on the outbound clusters they select.</summary>
internal static class HealthCheckBuilder
{
    /// <summary>Adds the first HealthCheck that selects this cluster (service, port, subset); later ones are reported.</summary>
    public static void Apply(Cluster cluster, ServiceIndex index, MeshService service, ServicePort port, string? subset, ProxyKind kind, SnapshotBuilder snapshot)
    {
        HealthCheck? chosen = null;
        foreach (var check in index.HealthChecksFor(service.Hostname))
        {
            if ((check.Port is { } p && p != port.Number) || (check.Subset is { } s && s != subset))
            {
                continue;
            }
            if (chosen is null)
            {
                chosen = check;
            }
            else
            {
                // Envoy runs every check it is given; Bowline's proxy runs one per cluster, so one is given.
                snapshot.Warn($"{check.Meta} ({check.Meta.File}) also selects cluster {cluster.Name}, already checked by {chosen.Meta}; only {chosen.Meta} applies. Narrow one with port or subset");
            }
        }
        if (chosen is null)
        {
            return;
        }
        if (kind == ProxyKind.ProxylessGrpc)
        {
            // gRPC clients run no active health checks (they honour EDS health); the sidecars' checks keep EDS honest for them.
            snapshot.Warn($"{chosen.Meta} ({chosen.Meta.File}): proxyless gRPC clients do not run active health checks; it applies to sidecars and gateways only");
            return;
        }
        cluster.HealthChecks.Add(Build(chosen));
    }

    /// <summary>References a HealthCheck makes that the mesh cannot satisfy: a host, port or subset that does not exist.</summary>
    public static void WarnUnresolved(ServiceIndex index, SnapshotBuilder snapshot)
    {
        foreach (var check in index.Config.HealthChecks)
        {
            var host = Names.Qualify(check.Host, check.Meta.Namespace);
            var where = $"{check.Meta} ({check.Meta.File})";
            if (index.FindService(host) is not { } service)
            {
                snapshot.Warn($"{where}: host {host} is not a service in the mesh; it checks nothing until one exists");
                continue;
            }
            if (check.Port is { } port && !service.Ports.Any(p => p.Number == port && p.IsHttp))
            {
                snapshot.Warn($"{where}: {host} has no HTTP port {port}; it checks nothing. Name one of: {string.Join(", ", service.Ports.Where(p => p.IsHttp).Select(p => p.Number))}");
            }
            if (check.Subset is { } subset && index.FindDestinationRule(host)?.Subsets.Any(s => s.Name == subset) != true)
            {
                snapshot.Warn($"{where}: {host} has no subset {subset} in its DestinationRule; it checks nothing until the subset is defined");
            }
        }
    }

    public static EnvoyHealthCheck Build(HealthCheck check)
    {
        var result = new EnvoyHealthCheck
        {
            Timeout = Duration.FromTimeSpan(check.Timeout),
            Interval = Duration.FromTimeSpan(check.Interval),
            UnhealthyThreshold = (uint)check.UnhealthyThreshold,
            HealthyThreshold = (uint)check.HealthyThreshold,
        };
        if (check.IntervalJitter > TimeSpan.Zero)
        {
            result.IntervalJitter = Duration.FromTimeSpan(check.IntervalJitter);
        }
        switch (check.Probe)
        {
            case HttpHealthProbe http:
                var probe = new EnvoyHealthCheck.Types.HttpHealthCheck { Path = http.Path, Host = http.Host ?? "" };
                // Always explicit: Envoy defaults to 200 only, Bowline to 200-299, so both read the same ranges.
                // Int64Range's end is exclusive; the YAML's is inclusive.
                probe.ExpectedStatuses.AddRange(http.ExpectedStatuses.Select(r => new Int64Range { Start = r.Start, End = r.End + 1L }));
                result.HttpHealthCheck = probe;
                break;
            case GrpcHealthProbe grpc:
                result.GrpcHealthCheck = new EnvoyHealthCheck.Types.GrpcHealthCheck { ServiceName = grpc.ServiceName };
                break;
            default:
                result.TcpHealthCheck = new EnvoyHealthCheck.Types.TcpHealthCheck();
                break;
        }
        return result;
    }
}
