using System.Globalization;
using System.Text.RegularExpressions;
using Bowline.Proxy.Clusters;
using Bowline.Proxy.Filters.Http;
using Bowline.Proxy.Routing;
using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Google.Protobuf.WellKnownTypes;
using DirectResponseAction = Bowline.Proxy.Routing.DirectResponseAction;
using RedirectAction = Bowline.Proxy.Routing.RedirectAction;
using RetryPolicy = Bowline.Proxy.Routing.RetryPolicy;
using RouteAction = Bowline.Proxy.Routing.RouteAction;

namespace Bowline.Proxy.Configuration;

/// <summary>
/// Compiles an RDS <c>RouteConfiguration</c> (or an HCM's inline one) into a <see cref="RouteTable"/>: matchers,
/// actions with cluster handles (never compiled clusters, so CDS and EDS updates leave tables alone), retry and hash
/// policies, header mutations and per-filter overrides. Every field is implemented or refused.
/// </summary>
internal sealed class RouteCompiler(ClusterManager clusters, HttpFilterCatalog filters)
{
    public RouteTable Compile(RouteConfiguration config)
    {
        var where = $"route configuration {config.Name}";
        XdsFields.Check(config, where, "name", "virtual_hosts", "request_headers_to_add", "request_headers_to_remove", "response_headers_to_add", "response_headers_to_remove");
        var configRequest = Headers(config.RequestHeadersToAdd, config.RequestHeadersToRemove, where);
        var configResponse = Headers(config.ResponseHeadersToAdd, config.ResponseHeadersToRemove, where);
        var hosts = new List<(IReadOnlyList<string>, VirtualHostEntry)>();
        foreach (var vhost in config.VirtualHosts)
        {
            var vwhere = $"{where} virtual host {vhost.Name}";
            XdsFields.Check(vhost, vwhere, "domains", "routes", "typed_per_filter_config", "include_request_attempt_count", "retry_policy",
                "request_headers_to_add", "request_headers_to_remove", "response_headers_to_add", "response_headers_to_remove");
            var context = new VirtualHostContext(
                HeaderMutation.Combine(configRequest, Headers(vhost.RequestHeadersToAdd, vhost.RequestHeadersToRemove, vwhere)),
                HeaderMutation.Combine(Headers(vhost.ResponseHeadersToAdd, vhost.ResponseHeadersToRemove, vwhere), configResponse),
                vhost.RetryPolicy is { } vr ? Retry(vr, vwhere + " retry_policy") : null,
                vhost.IncludeRequestAttemptCount);
            var entries = vhost.Routes.Select((route, i) => CompileRoute(route, $"{vwhere} route {(route.Name.Length > 0 ? route.Name : i.ToString(CultureInfo.InvariantCulture))}", context)).ToArray();
            hosts.Add((vhost.Domains.ToList(), new VirtualHostEntry(vhost.Name, entries, PerFilter(vhost.TypedPerFilterConfig, vwhere))));
        }
        return new RouteTable(config.Name, hosts, config);
    }

    private sealed record VirtualHostContext(HeaderMutation? RequestHeaders, HeaderMutation? ResponseHeaders, RetryPolicy? Retry, bool IncludeAttemptCount);

    private RouteEntry CompileRoute(Route route, string where, VirtualHostContext vhost)
    {
        XdsFields.Check(route, where, "match", "route", "redirect", "direct_response", "typed_per_filter_config",
            "request_headers_to_add", "request_headers_to_remove", "response_headers_to_add", "response_headers_to_remove", "decorator");
        string? decorator = null;
        if (route.Decorator is { } d)
        {
            XdsFields.Check(d, where + " decorator", "operation", "propagate");
            decorator = d.Operation is { Length: > 0 } operation ? operation : throw new ProxyConfigException($"{where} decorator: operation must not be empty");
        }
        var match = route.Match ?? throw new ProxyConfigException($"{where}: match is required");
        var (exact, prefix, regex, caseSensitive, headers, query) = Match(match, where);
        var requestHeaders = HeaderMutation.Combine(vhost.RequestHeaders, Headers(route.RequestHeadersToAdd, route.RequestHeadersToRemove, where));
        var responseHeaders = HeaderMutation.Combine(Headers(route.ResponseHeadersToAdd, route.ResponseHeadersToRemove, where), vhost.ResponseHeaders);
        var perFilter = PerFilter(route.TypedPerFilterConfig, where);
        return route.ActionCase switch
        {
            Route.ActionOneofCase.Route_ => new RouteEntry(route.Name, exact, prefix, regex, caseSensitive, headers, query)
            {
                Kind = RouteKind.Forward,
                Action = Action(route.Route_, where, vhost),
                RequestHeaders = requestHeaders,
                ResponseHeaders = responseHeaders,
                FilterConfigs = perFilter,
                IncludeAttemptCount = vhost.IncludeAttemptCount,
                Decorator = decorator,
            },
            Route.ActionOneofCase.Redirect => new RouteEntry(route.Name, exact, prefix, regex, caseSensitive, headers, query)
            {
                Kind = RouteKind.Redirect,
                Redirect = Redirect(route.Redirect, where),
                ResponseHeaders = responseHeaders,
                FilterConfigs = perFilter,
                Decorator = decorator,
            },
            Route.ActionOneofCase.DirectResponse => new RouteEntry(route.Name, exact, prefix, regex, caseSensitive, headers, query)
            {
                Kind = RouteKind.DirectResponse,
                DirectResponse = DirectResponse(route.DirectResponse, where),
                ResponseHeaders = responseHeaders,
                FilterConfigs = perFilter,
                Decorator = decorator,
            },
            _ => throw new ProxyConfigException($"{where}: action {route.ActionCase} is not supported; use route, redirect or direct_response"),
        };
    }

    private RouteAction Action(Envoy.Config.Route.V3.RouteAction action, string where, VirtualHostContext vhost)
    {
        XdsFields.Check(action, where + " route", "cluster", "weighted_clusters", "timeout", "retry_policy", "hash_policy", "prefix_rewrite", "regex_rewrite",
            "host_rewrite_literal", "request_mirror_policies", "upgrade_configs", "max_grpc_timeout", "max_stream_duration", "idle_timeout", "rate_limits");
        if (action.IdleTimeout is { } idle && idle.ToTimeSpan() != TimeSpan.Zero)
        {
            throw new ProxyConfigException($"{where}: route.idle_timeout is not supported; set 0s or leave it out");
        }
        foreach (var upgrade in action.UpgradeConfigs)
        {
            XdsFields.Check(upgrade, where + " route.upgrade_configs", "upgrade_type", "enabled");
        }
        var targets = new List<WeightedTarget>();
        switch (action.ClusterSpecifierCase)
        {
            case Envoy.Config.Route.V3.RouteAction.ClusterSpecifierOneofCase.Cluster:
                targets.Add(new WeightedTarget(clusters.Handle(action.Cluster), 1));
                break;
            case Envoy.Config.Route.V3.RouteAction.ClusterSpecifierOneofCase.WeightedClusters:
                XdsFields.Check(action.WeightedClusters, where + " weighted_clusters", "clusters", "total_weight");
                long cumulative = 0;
                foreach (var weighted in action.WeightedClusters.Clusters)
                {
                    XdsFields.Check(weighted, where + " weighted cluster", "name", "weight", "request_headers_to_add", "request_headers_to_remove", "response_headers_to_add", "response_headers_to_remove", "host_rewrite_literal");
                    var weight = (long)(weighted.Weight ?? 0);
                    if (weight == 0)
                    {
                        continue;
                    }
                    cumulative += weight;
                    targets.Add(new WeightedTarget(clusters.Handle(weighted.Name), cumulative,
                        Headers(weighted.RequestHeadersToAdd, weighted.RequestHeadersToRemove, where),
                        Headers(weighted.ResponseHeadersToAdd, weighted.ResponseHeadersToRemove, where),
                        weighted.HostRewriteLiteral.Length > 0 ? weighted.HostRewriteLiteral : null));
                }
                if (targets.Count == 0)
                {
                    throw new ProxyConfigException($"{where}: weighted_clusters has no cluster with a weight above 0");
                }
                break;
            default:
                throw new ProxyConfigException($"{where}: cluster specifier {action.ClusterSpecifierCase} is not supported; use cluster or weighted_clusters");
        }
        // Envoy's default route timeout is 15 s; zero disables it, and so does one longer than a timer can run.
        var timeout = action.Timeout is null ? TimeSpan.FromSeconds(15) : action.Timeout.ToTimeSpan();
        (Regex, string)? regexRewrite = action.RegexRewrite is { } rr
            ? (StringMatcher.CompileRegex(rr.Pattern.Regex, where + " regex_rewrite", anchored: false), Re2Substitution(rr.Substitution))
            : null;
        return new RouteAction([.. targets])
        {
            Timeout = timeout > TimeSpan.Zero && timeout <= ClusterCompiler.MaxTimer ? timeout : null,
            Retry = action.RetryPolicy is { } policy ? Retry(policy, where + " retry_policy") : vhost.Retry,
            HashPolicies = [.. action.HashPolicy.Select((h, i) => Hash(h, $"{where} hash_policy[{i}]"))],
            PrefixRewrite = action.PrefixRewrite.Length > 0 ? action.PrefixRewrite : null,
            RegexRewrite = regexRewrite,
            HostRewrite = action.HostRewriteLiteral.Length > 0 ? action.HostRewriteLiteral : null,
            Mirrors = [.. action.RequestMirrorPolicies.Select(m => Mirror(m, where))],
            RateLimits = [.. action.RateLimits.Select((r, i) => RateLimitPolicy.Compile(r, $"{where} rate_limits[{i}]"))],
        };
    }

    private MirrorPolicy Mirror(Envoy.Config.Route.V3.RouteAction.Types.RequestMirrorPolicy mirror, string where)
    {
        XdsFields.Check(mirror, where + " request_mirror_policies", "cluster", "runtime_fraction", "trace_sampled");
        if (mirror.Cluster.Length == 0)
        {
            throw new ProxyConfigException($"{where}: request_mirror_policies needs a cluster");
        }
        return new MirrorPolicy(clusters.Handle(mirror.Cluster), Fraction.From(mirror.RuntimeFraction, Fraction.All, where + " mirror runtime_fraction").PerMillion);
    }

    internal static RetryPolicy Retry(Envoy.Config.Route.V3.RetryPolicy policy, string where)
    {
        XdsFields.Check(policy, where, "retry_on", "num_retries", "per_try_timeout", "retriable_status_codes", "retry_host_predicate", "host_selection_retry_max_attempts", "retry_back_off",
            "retry_priority");
        var on = RetryOn.None;
        foreach (var condition in policy.RetryOn.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            on |= condition switch
            {
                "5xx" => RetryOn.FiveXx,
                "gateway-error" => RetryOn.GatewayError,
                "reset" => RetryOn.Reset,
                "reset-before-request" => RetryOn.ResetBeforeRequest,
                "connect-failure" => RetryOn.ConnectFailure,
                "refused-stream" => RetryOn.RefusedStream,
                "retriable-4xx" => RetryOn.Retriable4xx,
                "retriable-status-codes" => RetryOn.RetriableStatusCodes,
                "cancelled" => RetryOn.GrpcCancelled,
                "deadline-exceeded" => RetryOn.GrpcDeadlineExceeded,
                "internal" => RetryOn.GrpcInternal,
                "resource-exhausted" => RetryOn.GrpcResourceExhausted,
                "unavailable" => RetryOn.GrpcUnavailable,
                _ => throw new ProxyConfigException($"{where}: retry_on condition '{condition}' is not supported; use 5xx, gateway-error, reset, reset-before-request, connect-failure, refused-stream, retriable-4xx, retriable-status-codes, cancelled, deadline-exceeded, internal, resource-exhausted or unavailable"),
            };
        }
        var avoidPrevious = false;
        foreach (var predicate in policy.RetryHostPredicate)
        {
            if (predicate.TypedConfig?.TypeUrl != "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate")
            {
                throw new ProxyConfigException($"{where}: retry_host_predicate {predicate.Name} is not supported; use envoy.retry_host_predicates.previous_hosts");
            }
            avoidPrevious = true;
        }
        var priorityUpdateFrequency = policy.RetryPriority is { } priority ? PreviousPrioritiesUpdateFrequency(priority, where) : 0;
        var backoffBase = RetryPolicy.DefaultBackoffBase;
        TimeSpan? backoffMax = null;
        if (policy.RetryBackOff is { } backoff)
        {
            XdsFields.Check(backoff, where + " retry_back_off", "base_interval", "max_interval");
            backoffBase = backoff.BaseInterval?.ToTimeSpan() is { Ticks: > 0 } b ? b : throw new ProxyConfigException($"{where}: retry_back_off.base_interval must be above 0");
            backoffMax = backoff.MaxInterval?.ToTimeSpan();
        }
        var perTry = policy.PerTryTimeout?.ToTimeSpan() is { Ticks: > 0 } t && t <= ClusterCompiler.MaxTimer ? t : (TimeSpan?)null;
        return new RetryPolicy(on, (int)Math.Min(policy.NumRetries ?? 1, 100), perTry, [.. policy.RetriableStatusCodes.Select(c => (int)c)], avoidPrevious,
            (int)Math.Clamp(policy.HostSelectionRetryMaxAttempts, 1, 10), backoffBase, backoffMax ?? TimeSpan.FromTicks(backoffBase.Ticks * 10), priorityUpdateFrequency);
    }

    private const string PreviousPrioritiesType = "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig";

    /// <summary>
    /// Envoy's previous_priorities retry priority (what Istio's retryRemoteLocalities sends): its one field,
    /// update_frequency, read off the wire so the check does not depend on which extension protos are generated.
    /// </summary>
    private static int PreviousPrioritiesUpdateFrequency(Envoy.Config.Route.V3.RetryPolicy.Types.RetryPriority priority, string where)
    {
        if (priority.TypedConfig?.TypeUrl != PreviousPrioritiesType)
        {
            throw new ProxyConfigException($"{where}: retry_priority {priority.Name} ({priority.TypedConfig?.TypeUrl ?? "no typed_config"}) is not supported; use envoy.retry_priorities.previous_priorities");
        }
        var input = new Google.Protobuf.CodedInputStream(priority.TypedConfig.Value.ToByteArray());
        var frequency = 0L;
        while (input.ReadTag() is var tag && tag != 0)
        {
            if (tag != 8)
            {
                throw new ProxyConfigException($"{where}: retry_priority previous_priorities has field {tag >> 3}, which Bowline does not know; only update_frequency is supported");
            }
            frequency = input.ReadInt32();
        }
        if (frequency <= 0)
        {
            throw new ProxyConfigException($"{where}: retry_priority previous_priorities.update_frequency must be above 0; it is {frequency}");
        }
        return (int)frequency;
    }

    /// <summary>Envoy's substitutions are RE2's (<c>\\1</c> for a group, <c>$</c> literal); .NET's Regex.Replace reads <c>${1}</c>.</summary>
    internal static string Re2Substitution(string substitution) =>
        Regex.Replace(substitution.Replace("$", "$$", StringComparison.Ordinal), @"\\(\d)", "$${$1}", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));

    private static HashPolicy Hash(Envoy.Config.Route.V3.RouteAction.Types.HashPolicy hash, string where)
    {
        XdsFields.Check(hash, where, "header", "cookie", "connection_properties", "query_parameter", "terminal");
        switch (hash.PolicySpecifierCase)
        {
            case Envoy.Config.Route.V3.RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.Header:
                XdsFields.Check(hash.Header, where + " header", "header_name");
                return new HashPolicy(HashSource.Header, hash.Header.HeaderName.ToLowerInvariant(), hash.Terminal);
            case Envoy.Config.Route.V3.RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.Cookie:
                XdsFields.Check(hash.Cookie, where + " cookie", "name", "ttl", "path");
                return new HashPolicy(HashSource.Cookie, hash.Cookie.Name, hash.Terminal, hash.Cookie.Ttl?.ToTimeSpan(), hash.Cookie.Path.Length > 0 ? hash.Cookie.Path : null);
            case Envoy.Config.Route.V3.RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.ConnectionProperties when hash.ConnectionProperties.SourceIp:
                return new HashPolicy(HashSource.SourceIp, "", hash.Terminal);
            case Envoy.Config.Route.V3.RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.QueryParameter:
                return new HashPolicy(HashSource.QueryParameter, hash.QueryParameter.Name, hash.Terminal);
            default:
                throw new ProxyConfigException($"{where}: hash policy {hash.PolicySpecifierCase} is not supported; use header, cookie, connection_properties.source_ip or query_parameter");
        }
    }

    private static RedirectAction Redirect(Envoy.Config.Route.V3.RedirectAction redirect, string where)
    {
        XdsFields.Check(redirect, where + " redirect", "https_redirect", "scheme_redirect", "host_redirect", "port_redirect", "path_redirect", "prefix_rewrite", "regex_rewrite", "response_code", "strip_query");
        var status = redirect.ResponseCode switch
        {
            Envoy.Config.Route.V3.RedirectAction.Types.RedirectResponseCode.MovedPermanently => 301,
            Envoy.Config.Route.V3.RedirectAction.Types.RedirectResponseCode.Found => 302,
            Envoy.Config.Route.V3.RedirectAction.Types.RedirectResponseCode.SeeOther => 303,
            Envoy.Config.Route.V3.RedirectAction.Types.RedirectResponseCode.TemporaryRedirect => 307,
            _ => 308,
        };
        var scheme = redirect.HttpsRedirect ? "https" : redirect.SchemeRedirect.Length > 0 ? redirect.SchemeRedirect : null;
        (Regex, string)? regex = redirect.RegexRewrite is { } rr ? (StringMatcher.CompileRegex(rr.Pattern.Regex, where + " redirect.regex_rewrite", anchored: false), Re2Substitution(rr.Substitution)) : null;
        return new RedirectAction(scheme, redirect.HostRedirect.Length > 0 ? redirect.HostRedirect : null, redirect.PortRedirect is > 0 and <= 65535 ? (int)redirect.PortRedirect : null,
            redirect.PathRedirect.Length > 0 ? redirect.PathRedirect : null, redirect.PrefixRewrite.Length > 0 ? redirect.PrefixRewrite : null, regex, status, redirect.StripQuery);
    }

    private static DirectResponseAction DirectResponse(Envoy.Config.Route.V3.DirectResponseAction direct, string where)
    {
        XdsFields.Check(direct, where + " direct_response", "status", "body");
        if (direct.Status is < 200 or > 599)
        {
            throw new ProxyConfigException($"{where}: direct_response.status {direct.Status} is not an HTTP status (200-599)");
        }
        var body = "";
        if (direct.Body is { } source)
        {
            XdsFields.Check(source, where + " direct_response.body", "inline_string", "inline_bytes");
            body = source.SpecifierCase == DataSource.SpecifierOneofCase.InlineBytes ? source.InlineBytes.ToStringUtf8() : source.InlineString;
        }
        return new DirectResponseAction((int)direct.Status, body);
    }

    /// <summary>A route <c>match</c> compiled: path (exact, prefix or safe_regex), case sensitivity, headers, query parameters. Shared with jwt_authn's rules.</summary>
    internal static (string? Exact, string? Prefix, Regex? Regex, bool CaseSensitive, HeaderCondition[] Headers, QueryCondition[] Query) Match(RouteMatch match, string where)
    {
        XdsFields.Check(match, where + " match", "prefix", "path", "safe_regex", "case_sensitive", "headers", "query_parameters");
        string? exact = null, prefix = null;
        Regex? regex = null;
        var caseSensitive = match.CaseSensitive ?? true;
        switch (match.PathSpecifierCase)
        {
            case RouteMatch.PathSpecifierOneofCase.Prefix:
                prefix = match.Prefix;
                break;
            case RouteMatch.PathSpecifierOneofCase.Path:
                exact = match.Path;
                break;
            case RouteMatch.PathSpecifierOneofCase.SafeRegex:
                regex = StringMatcher.CompileRegex(match.SafeRegex.Regex, where + " match.safe_regex", ignoreCase: !caseSensitive);
                break;
            default:
                throw new ProxyConfigException($"{where}: match.{match.PathSpecifierCase} is not supported; use prefix, path or safe_regex");
        }
        return (exact, prefix, regex, caseSensitive, [.. match.Headers.Select(h => Header(h, where))], [.. match.QueryParameters.Select(q => Query(q, where))]);
    }

    internal static HeaderCondition Header(HeaderMatcher h, string where)
    {
        XdsFields.Check(h, where + $" header {h.Name}", "name", "string_match", "present_match", "invert_match", "exact_match", "prefix_match", "safe_regex_match", "treat_missing_header_as_empty");
        // The deprecated exact/prefix/safe_regex forms are still Envoy's API (older control planes send them).
#pragma warning disable CS0612
        var matcher = h.HeaderMatchSpecifierCase switch
        {
            HeaderMatcher.HeaderMatchSpecifierOneofCase.StringMatch => StringMatcher.From(h.StringMatch, $"{where} header {h.Name}"),
            HeaderMatcher.HeaderMatchSpecifierOneofCase.ExactMatch => StringMatcher.Exact(h.ExactMatch),
            HeaderMatcher.HeaderMatchSpecifierOneofCase.PrefixMatch => StringMatcher.Prefix(h.PrefixMatch),
            HeaderMatcher.HeaderMatchSpecifierOneofCase.SafeRegexMatch => StringMatcher.Regex(h.SafeRegexMatch.Regex, $"{where} header {h.Name}"),
            HeaderMatcher.HeaderMatchSpecifierOneofCase.PresentMatch => null,
            HeaderMatcher.HeaderMatchSpecifierOneofCase.None => null,
            _ => throw new ProxyConfigException($"{where}: header {h.Name} match {h.HeaderMatchSpecifierCase} is not supported"),
        };
#pragma warning restore CS0612
        // No specifier at all is Envoy's presence match.
        var presence = matcher is null;
        var wantsAbsent = h.HeaderMatchSpecifierCase == HeaderMatcher.HeaderMatchSpecifierOneofCase.PresentMatch && !h.PresentMatch;
        return new HeaderCondition(h.Name.ToLowerInvariant(), matcher, presence, h.InvertMatch != wantsAbsent, h.TreatMissingHeaderAsEmpty && matcher is not null);
    }

    internal static QueryCondition Query(QueryParameterMatcher q, string where)
    {
        XdsFields.Check(q, where + $" query parameter {q.Name}", "name", "string_match", "present_match");
        return new QueryCondition(q.Name, q.QueryParameterMatchSpecifierCase == QueryParameterMatcher.QueryParameterMatchSpecifierOneofCase.StringMatch
            ? StringMatcher.From(q.StringMatch, $"{where} query parameter {q.Name}")
            : null);
    }

    private static HeaderMutation? Headers(IEnumerable<HeaderValueOption> add, IEnumerable<string> remove, string where)
    {
        var additions = new List<HeaderAddition>();
        foreach (var option in add)
        {
            XdsFields.Check(option, where + " headers_to_add", "header", "append", "append_action", "keep_empty_value");
            var header = option.Header ?? throw new ProxyConfigException($"{where}: headers_to_add entry without header");
            XdsFields.Check(header, where + " headers_to_add header", "key", "value", "raw_value");
            var value = header.RawValue.IsEmpty ? header.Value : header.RawValue.ToStringUtf8();
            if (value.Contains('%', StringComparison.Ordinal))
            {
                throw new ProxyConfigException($"{where}: header {header.Key} value '{value}' uses %...% substitution, which is not supported yet; use a literal value");
            }
#pragma warning disable CS0612 // append is deprecated for append_action, and still sent by control planes.
            var action = option.Append is { } append
                ? (append ? HeaderAppend.AppendIfExistsOrAdd : HeaderAppend.OverwriteIfExistsOrAdd)
                : option.AppendAction switch
                {
                    HeaderValueOption.Types.HeaderAppendAction.AddIfAbsent => HeaderAppend.AddIfAbsent,
                    HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd => HeaderAppend.OverwriteIfExistsOrAdd,
                    HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExists => HeaderAppend.OverwriteIfExists,
                    _ => HeaderAppend.AppendIfExistsOrAdd,
                };
#pragma warning restore CS0612
            additions.Add(new HeaderAddition(header.Key.ToLowerInvariant(), value, action, option.KeepEmptyValue));
        }
        var removals = remove.Select(r => r.ToLowerInvariant()).ToArray();
        return additions.Count == 0 && removals.Length == 0 ? null : new HeaderMutation([.. additions], removals);
    }

    /// <summary>
    /// A route's or virtual host's <c>typed_per_filter_config</c>: compiled by the factory its type belongs to.
    /// <c>envoy.config.route.v3.FilterConfig</c> wraps an entry with <c>disabled</c> and <c>is_optional</c>.
    /// </summary>
    private IReadOnlyDictionary<string, PerFilterConfig>? PerFilter(Google.Protobuf.Collections.MapField<string, Any> configs, string where)
    {
        if (configs.Count == 0)
        {
            return null;
        }
        var compiled = new Dictionary<string, PerFilterConfig>(StringComparer.Ordinal);
        foreach (var (name, any) in configs)
        {
            var fwhere = $"{where} typed_per_filter_config[{name}]";
            var config = any;
            bool? disabled = null;
            var optional = false;
            if (any.TypeUrl == "type.googleapis.com/envoy.config.route.v3.FilterConfig")
            {
                var wrapper = any.Unpack<FilterConfig>();
                XdsFields.Check(wrapper, fwhere, "config", "is_optional", "disabled");
                disabled = wrapper.Disabled;
                optional = wrapper.IsOptional;
                config = wrapper.Config;
            }
            if (config is null)
            {
                compiled[name] = new PerFilterConfig(null, disabled);
                continue;
            }
            // Any per-route config of a filter enables it there, as in Envoy, unless a wrapper says otherwise.
            disabled ??= false;
            var factory = filters.ForPerRoute(config.TypeUrl);
            if (factory is null)
            {
                if (optional)
                {
                    continue;
                }
                throw new ProxyConfigException($"{fwhere}: per-filter config type {config.TypeUrl} is not supported; supported filters: {string.Join(", ", filters.ConfigTypes)}");
            }
            compiled[name] = new PerFilterConfig(factory.CompilePerRoute(config, fwhere), disabled);
        }
        return compiled;
    }
}
