namespace Bowline.ControlPlane.Config.Parsing;

/// <summary><c>bowline.dev/v1alpha1 HealthCheck</c>: the service it checks, the probe, its timing and thresholds.</summary>
internal static class HealthCheckParser
{
    public static MeshResource? Parse(ResourceMeta meta, FieldReader spec)
    {
        var before = spec.ErrorCount;
        var host = BowlineRules.ServiceHost(spec);
        var subset = spec.String("subset");
        if (subset is not null && !IstioRules.IsDns1123Label(subset))
        {
            spec.Error("subset", $"'{subset}' is not a valid subset name (a DNS label: letters, digits and '-'); name a subset of the host's DestinationRule");
        }
        var port = spec.Int("port", min: 1, max: 65535);
        var interval = spec.IstioDuration("interval");
        var timeout = spec.IstioDuration("timeout");
        var jitter = spec.Duration("intervalJitter");
        if (jitter is { } j && (j < TimeSpan.Zero || j.Ticks % TimeSpan.TicksPerMillisecond != 0))
        {
            spec.Error("intervalJitter", "must be zero or more whole milliseconds, such as 500ms");
        }
        var healthy = spec.Int("healthyThreshold", min: 1);
        var unhealthy = spec.Int("unhealthyThreshold", min: 1);

        var probes = new List<HealthProbe>();
        if (spec.Map("http") is { } http)
        {
            probes.Add(Http(http));
        }
        if (spec.Map("grpc") is { } grpc)
        {
            var service = grpc.String("serviceName") ?? "";
            grpc.Finish();
            probes.Add(new GrpcHealthProbe(service));
        }
        if (spec.Has("tcp"))
        {
            // `tcp: {}`: the connect is the whole check; the map has no fields.
            spec.Map("tcp")?.Finish();
            probes.Add(new TcpHealthProbe());
        }
        if (probes.Count != 1)
        {
            spec.Error(probes.Count == 0
                ? "give one probe: http (a path to GET), grpc (the gRPC health protocol) or tcp: {} (a connect)"
                : "give exactly one of http, grpc or tcp; a HealthCheck runs one probe");
        }
        if (host is null || spec.ErrorCount != before || probes.Count != 1)
        {
            return null;
        }
        var check = new HealthCheck(meta, host, subset, port, probes[0]);
        return check with
        {
            Interval = interval ?? check.Interval,
            Timeout = timeout ?? check.Timeout,
            IntervalJitter = jitter ?? check.IntervalJitter,
            HealthyThreshold = healthy ?? check.HealthyThreshold,
            UnhealthyThreshold = unhealthy ?? check.UnhealthyThreshold,
        };
    }

    private static HttpHealthProbe Http(FieldReader http)
    {
        var path = http.String("path", required: true) ?? "/";
        if (!path.StartsWith('/'))
        {
            http.Error("path", $"'{path}' must start with '/', such as /healthz");
        }
        var host = http.String("host");
        if (host is not null && IstioRules.Fqdn(host) is { } hostProblem)
        {
            http.Error("host", hostProblem);
        }
        var statuses = new List<(int, int)>();
        foreach (var range in http.MapList("expectedStatuses"))
        {
            var start = range.Int("start", required: true, min: 100, max: 599);
            var end = range.Int("end", required: true, min: 100, max: 599);
            range.Finish();
            if (start is { } s && end is { } e)
            {
                if (s > e)
                {
                    range.Error($"start {s} is above end {e}; both ends are included, so {{start: {e}, end: {s}}} is probably meant");
                }
                else
                {
                    statuses.Add((s, e));
                }
            }
        }
        http.Finish();
        return new HttpHealthProbe(path, host, statuses.Count > 0 ? statuses : [(200, 299)]);
    }
}
