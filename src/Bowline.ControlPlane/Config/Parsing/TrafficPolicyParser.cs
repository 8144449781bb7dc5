namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>Reads a DestinationRule <c>TrafficPolicy</c> (and its port-level policies) with Istio's rules.</summary>
internal static class TrafficPolicyParser
{
    /// <summary>Istio's Maglev limit: Envoy's largest table size is 5000011, exclusive.</summary>
    private const ulong MaglevTableLimit = 5000011;

    public static TrafficPolicy? Parse(FieldReader? policy)
    {
        if (policy is null)
        {
            return null;
        }
        var before = policy.ErrorCount;
        var outlier = Outlier(policy.Map("outlierDetection"));
        var pool = ConnectionPool(policy.Map("connectionPool"));
        var loadBalancer = LoadBalancer(policy.Map("loadBalancer"), policy.Has("outlierDetection"));
        var retryBudget = RetryBudget(policy.Map("retryBudget"));
        var ports = new List<PortTrafficPolicy>();
        foreach (var portPolicy in policy.MapList("portLevelSettings"))
        {
            if (PortPolicy(portPolicy) is { } parsed)
            {
                if (ports.Any(p => p.Port == parsed.Port))
                {
                    portPolicy.Warning("port", $"port {parsed.Port} already has a port-level policy; as in Istio, only the first applies");
                }
                ports.Add(parsed);
            }
        }
        var tls = ClientTlsParser.Parse(policy.Map("tls"));
        if (policy.Has("tunnel") && policy.Has("proxyProtocol"))
        {
            policy.Error("tunnel", "tunnel and proxyProtocol cannot be set together");
        }
        policy.Unsupported("tunnel", "tunnel");
        policy.Unsupported("proxyProtocol", "proxyProtocol");
        policy.Finish();
        if (!new[] { "outlierDetection", "connectionPool", "loadBalancer", "tls", "portLevelSettings", "tunnel", "proxyProtocol", "retryBudget" }.Any(policy.Has))
        {
            policy.Error("a traffic policy needs at least one field; remove it or set loadBalancer, connectionPool, outlierDetection, ...");
        }
        return policy.ErrorCount == before ? new TrafficPolicy(loadBalancer, pool, outlier, retryBudget, ports) { Tls = tls } : null;
    }

    private static PortTrafficPolicy? PortPolicy(FieldReader policy)
    {
        int? port = null;
        if (policy.Map("port") is { } portReader)
        {
            port = portReader.Int("number", required: true, min: 1, max: 65535);
            portReader.Finish();
        }
        else
        {
            policy.Error("port", "a port-level policy needs a port: {number: ...}");
        }
        var outlier = Outlier(policy.Map("outlierDetection"));
        var pool = ConnectionPool(policy.Map("connectionPool"));
        var loadBalancer = LoadBalancer(policy.Map("loadBalancer"), policy.Has("outlierDetection"));
        var tls = ClientTlsParser.Parse(policy.Map("tls"));
        policy.Finish();
        if (!new[] { "outlierDetection", "connectionPool", "loadBalancer", "tls" }.Any(policy.Has))
        {
            policy.Error("a port traffic policy needs at least one of loadBalancer, connectionPool, outlierDetection or tls");
        }
        return port is { } p ? new PortTrafficPolicy(p, loadBalancer, pool, outlier) { Tls = tls } : null;
    }

    private static LoadBalancerSettings? LoadBalancer(FieldReader? lb, bool hasOutlier)
    {
        if (lb is null)
        {
            return null;
        }
        var simple = lb.String("simple");
        if (simple is not (null or "UNSPECIFIED" or "ROUND_ROBIN" or "LEAST_REQUEST" or "LEAST_CONN" or "RANDOM" or "PASSTHROUGH"))
        {
            lb.Error("simple", $"'{simple}' must be ROUND_ROBIN, LEAST_REQUEST, RANDOM or PASSTHROUGH");
        }
        var hash = ConsistentHash(lb.Map("consistentHash"));
        if (simple is not null && lb.Has("consistentHash"))
        {
            lb.Error("give only one of simple or consistentHash");
        }
        if (lb.Has("localityLbSetting") && lb.Has("zoneAwareLbSetting"))
        {
            lb.Error("give only one of localityLbSetting or zoneAwareLbSetting");
        }
        var locality = LocalityLbSettingParser.Parse(lb.Map("localityLbSetting"), hasOutlier);
        lb.Unsupported("zoneAwareLbSetting", "zone-aware load balancing");
        var warmupDuration = WarmupDuration(lb);
        lb.Unsupported("warmup", "slow start (warmup)");
        lb.Finish();
        var normalized = simple switch { "LEAST_CONN" => "LEAST_REQUEST", "UNSPECIFIED" => null, _ => simple };
        return new LoadBalancerSettings(normalized, hash) { Locality = locality, WarmupDuration = warmupDuration };
    }

    /// <summary>
    /// The deprecated <c>warmupDurationSecs</c> (a duration, despite its name) with the CRD's rule: at least 1ms. Istio
    /// uses <c>warmup</c> instead when both are given, so then it is ignored, and a warning says so.
    /// </summary>
    private static TimeSpan? WarmupDuration(FieldReader lb)
    {
        if (lb.Duration("warmupDurationSecs") is not { } duration)
        {
            return null;
        }
        if (duration < TimeSpan.FromMilliseconds(1))
        {
            lb.Error("warmupDurationSecs", $"{duration.TotalMilliseconds}ms is too short: Istio requires a duration of at least 1ms; remove the field for no slow start");
            return null;
        }
        if (lb.Has("warmup"))
        {
            lb.Warning("warmupDurationSecs", "warmupDurationSecs is ignored because warmup is also set (Istio uses warmup then); remove one of them");
            return null;
        }
        return duration;
    }

    private static ConsistentHash? ConsistentHash(FieldReader? hash)
    {
        if (hash is null)
        {
            return null;
        }
        var header = hash.String("httpHeaderName");
        var useSourceIp = hash.Bool("useSourceIp");
        var query = hash.String("httpQueryParameterName");
        HashCookie? cookie = null;
        if (hash.Map("httpCookie") is { } cookieReader)
        {
            var name = cookieReader.String("name");
            var path = cookieReader.String("path");
            var ttl = cookieReader.Duration("ttl");
            cookieReader.Unsupported("attributes", "cookie attributes");
            cookieReader.Finish();
            if (string.IsNullOrEmpty(name))
            {
                cookieReader.Error("name", "a hash cookie needs a name");
            }
            else
            {
                cookie = new HashCookie(name, path, ttl);
            }
        }
        var keys = new[] { "httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName" }.Count(hash.Has);
        if (keys > 1)
        {
            hash.Error("give only one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName");
        }
        var legacyRing = hash.Long("minimumRingSize", min: 0);
        ulong? ringSize = null;
        var ringHash = false;
        if (hash.Map("ringHash") is { } ring)
        {
            ringHash = true;
            ringSize = (ulong?)ring.Long("minimumRingSize", min: 0);
            ring.Finish();
        }
        ulong? tableSize = null;
        var maglev = false;
        if (hash.Map("maglev") is { } maglevReader)
        {
            maglev = true;
            tableSize = (ulong?)maglevReader.Long("tableSize", min: 0) ?? 0;
            maglevReader.Finish();
            if (tableSize == 0)
            {
                maglevReader.Error("tableSize", "maglev needs a tableSize (a prime number such as 65537)");
            }
            else if (tableSize >= MaglevTableLimit)
            {
                maglevReader.Error("tableSize", $"tableSize must be less than {MaglevTableLimit}");
            }
            else if (!IstioRules.IsPrime(tableSize.Value))
            {
                maglevReader.Error("tableSize", $"tableSize {tableSize} must be a prime number (for example 65537)");
            }
        }
        hash.Finish();
        if (ringHash && maglev)
        {
            hash.Error("give only one of ringHash or maglev");
        }
        if (legacyRing is > 0)
        {
            hash.Warning("minimumRingSize", "minimumRingSize is deprecated; use ringHash: {minimumRingSize: ...}");
            if (ringHash || maglev)
            {
                hash.Error("minimumRingSize", "give only one of minimumRingSize or ringHash/maglev");
            }
        }
        return new ConsistentHash(header, cookie, useSourceIp ?? false, query)
        {
            MinimumRingSize = ringHash ? ringSize : legacyRing is > 0 ? (ulong)legacyRing : null,
            RingHash = ringHash,
            Maglev = maglev,
            MaglevTableSize = tableSize,
        };
    }

    private static ConnectionPoolSettings? ConnectionPool(FieldReader? pool)
    {
        if (pool is null)
        {
            return null;
        }
        TcpSettings? tcp = null;
        HttpSettings? http = null;
        if (pool.Map("tcp") is { } tcpReader)
        {
            var maxConnections = NonNegative(tcpReader, "maxConnections");
            var connectTimeout = tcpReader.IstioDuration("connectTimeout");
            TcpKeepalive? keepalive = null;
            if (tcpReader.Map("tcpKeepalive") is { } ka)
            {
                var probes = (uint)(ka.Long("probes", min: 0, max: uint.MaxValue) ?? 0);
                var time = ka.IstioDuration("time");
                var interval = ka.IstioDuration("interval");
                ka.Finish();
                keepalive = new TcpKeepalive(probes, time, interval);
            }
            var maxConnectionDuration = tcpReader.IstioDuration("maxConnectionDuration");
            // Istio's rule: an idle timeout of 0s is allowed (it disables the timeout) and skips the 1ms minimum.
            var idle = tcpReader.Duration("idleTimeout");
            if (idle is { } i && i != TimeSpan.Zero)
            {
                idle = tcpReader.IstioDuration("idleTimeout");
            }
            tcpReader.Finish();
            tcp = new TcpSettings(maxConnections, connectTimeout, keepalive, maxConnectionDuration, idle);
        }
        if (pool.Map("http") is { } httpReader)
        {
            var pending = NonNegative(httpReader, "http1MaxPendingRequests");
            var requests = NonNegative(httpReader, "http2MaxRequests");
            var perConnection = NonNegative(httpReader, "maxRequestsPerConnection");
            var retries = NonNegative(httpReader, "maxRetries");
            var idle = httpReader.IstioDuration("idleTimeout");
            var upgrade = httpReader.String("h2UpgradePolicy");
            if (upgrade is not (null or "DEFAULT" or "DO_NOT_UPGRADE" or "UPGRADE"))
            {
                httpReader.Error("h2UpgradePolicy", $"'{upgrade}' must be DEFAULT, DO_NOT_UPGRADE or UPGRADE");
            }
            var useClientProtocol = httpReader.Bool("useClientProtocol");
            if (useClientProtocol == true && upgrade == "UPGRADE")
            {
                httpReader.Error("useClientProtocol", "useClientProtocol cannot be true when h2UpgradePolicy is UPGRADE");
            }
            else if (useClientProtocol == true)
            {
                httpReader.Warning("useClientProtocol", "useClientProtocol is not supported by Bowline yet; the port's protocol decides HTTP/1.1 or HTTP/2 upstream");
            }
            var streams = NonNegative(httpReader, "maxConcurrentStreams");
            if (httpReader.Map("http2KeepAlive") is { } h2ka)
            {
                if (!h2ka.Has("interval"))
                {
                    h2ka.Error("interval", "is required");
                }
                if (!h2ka.Has("timeout"))
                {
                    h2ka.Error("timeout", "is required");
                }
                h2ka.IstioDuration("interval");
                h2ka.IstioDuration("timeout");
                h2ka.Finish();
                httpReader.Warning("http2KeepAlive", "http2KeepAlive is not supported by Bowline yet; this field has no effect");
            }
            httpReader.Finish();
            http = new HttpSettings(pending, requests, perConnection, retries, idle, upgrade, streams);
        }
        pool.Finish();
        if (tcp is null && http is null)
        {
            pool.Error("a connection pool needs tcp or http settings");
            return null;
        }
        return new ConnectionPoolSettings(tcp, http);
    }

    private static int NonNegative(FieldReader reader, string key)
    {
        var value = reader.Int(key) ?? 0;
        if (value < 0)
        {
            reader.Error(key, $"{value} is negative; give a non-negative number (0 means no limit)");
            return 0;
        }
        return value;
    }

    private static OutlierDetection? Outlier(FieldReader? outlier)
    {
        if (outlier is null)
        {
            return null;
        }
        var consecutive5xx = Wrapped(outlier, "consecutive5xxErrors");
        var gateway = Wrapped(outlier, "consecutiveGatewayErrors");
        var localOrigin = Wrapped(outlier, "consecutiveLocalOriginFailures");
        if (outlier.Int("consecutiveErrors") is not null)
        {
            outlier.Warning("consecutiveErrors", "consecutiveErrors is deprecated and has no effect; use consecutive5xxErrors or consecutiveGatewayErrors");
        }
        var split = outlier.Bool("splitExternalLocalOriginErrors") ?? false;
        var interval = outlier.IstioDuration("interval");
        var baseEjection = outlier.IstioDuration("baseEjectionTime");
        var maxEjection = outlier.Int("maxEjectionPercent", min: 0, max: 100) ?? 0;
        var minHealth = outlier.Int("minHealthPercent", min: 0, max: 100) ?? 0;
        outlier.Unsupported("outlierDetectionHttpErrorCodes", "outlierDetectionHttpErrorCodes");
        outlier.Finish();
        if (!split && localOrigin is > 0)
        {
            outlier.Error("consecutiveLocalOriginFailures", "consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors: true");
        }
        return new OutlierDetection(consecutive5xx, gateway, localOrigin, split, interval, baseEjection, maxEjection, minHealth);
    }

    /// <summary>A protobuf UInt32Value as Istio's YAML writes it: a plain number.</summary>
    private static uint? Wrapped(FieldReader reader, string key) => (uint?)reader.Long(key, min: 0, max: uint.MaxValue);

    private static RetryBudget? RetryBudget(FieldReader? budget)
    {
        if (budget is null)
        {
            return null;
        }
        var percent = budget.Double("percent");
        if (percent is < 0 or > 100)
        {
            budget.Error("percent", $"{percent} must be between 0 and 100");
        }
        var minConcurrency = (uint?)budget.Long("minRetryConcurrency", min: 0, max: uint.MaxValue);
        var interval = budget.Duration("budgetInterval");
        if (interval is not null)
        {
            budget.Warning("budgetInterval", "budgetInterval is not in the Envoy API Bowline serves; the budget counts active requests only (Envoy's default)");
        }
        budget.Finish();
        return new RetryBudget(percent, minConcurrency, interval);
    }
}
