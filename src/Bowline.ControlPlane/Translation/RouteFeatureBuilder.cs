using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Config.Parsing;
using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using CorsV3 = Envoy.Extensions.Filters.Http.Cors.V3;
using FaultV3 = Envoy.Extensions.Filters.Http.Fault.V3;

namespace Bowline.ControlPlane.Translation;

/// <summary>The parts of an Istio HTTP route beyond its destinations, as Istio translates them into Envoy route fields.</summary>
internal static class RouteFeatureBuilder
{
    /// <summary>Header operations as Envoy lists them: set (overwrite) before add (append), pseudo-headers dropped (the authority becomes a host rewrite).</summary>
    public static (List<HeaderValueOption> Add, List<string> Remove) Translate(HeaderOperation operation)
    {
        var add = new List<HeaderValueOption>();
        foreach (var (name, value) in operation.Set.Where(h => !IstioRules.IsInternalHeader(h.Key)))
        {
            add.Add(new HeaderValueOption { Header = new HeaderValue { Key = name, Value = value }, AppendAction = HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd });
        }
        foreach (var (name, value) in operation.Add.Where(h => !IstioRules.IsInternalHeader(h.Key)))
        {
            add.Add(new HeaderValueOption { Header = new HeaderValue { Key = name, Value = value }, AppendAction = HeaderValueOption.Types.HeaderAppendAction.AppendIfExistsOrAdd });
        }
        return (add, operation.Remove.Where(h => !IstioRules.IsInternalHeader(h)).ToList());
    }

    /// <summary>The authority a header operation writes (set wins over add), which Istio turns into host_rewrite_literal.</summary>
    public static string? Authority(HeaderOperations? headers) =>
        headers?.Request.Set.LastOrDefault(h => IstioRules.IsAuthorityHeader(h.Key)).Value
        ?? headers?.Request.Add.LastOrDefault(h => IstioRules.IsAuthorityHeader(h.Key)).Value;

    /// <summary>Adds a route's (or a single destination's) header operations to the route.</summary>
    public static void ApplyHeaders(Route route, HeaderOperations? headers)
    {
        if (headers is null)
        {
            return;
        }
        var (requestAdd, requestRemove) = Translate(headers.Request);
        var (responseAdd, responseRemove) = Translate(headers.Response);
        route.RequestHeadersToAdd.AddRange(requestAdd);
        route.RequestHeadersToRemove.AddRange(requestRemove);
        route.ResponseHeadersToAdd.AddRange(responseAdd);
        route.ResponseHeadersToRemove.AddRange(responseRemove);
    }

    /// <summary>
    /// Istio's redirect: the listener's port stands in for FROM_REQUEST_PORT (routes are built per port), and the
    /// scheme's default port is left out of the location. Null for a code Envoy cannot send (Istio drops such a route).
    /// </summary>
    public static RedirectAction? Redirect(HttpRedirect redirect, int listenerPort)
    {
        RedirectAction.Types.RedirectResponseCode? code = redirect.Code switch
        {
            0 or 301 => RedirectAction.Types.RedirectResponseCode.MovedPermanently,
            302 => RedirectAction.Types.RedirectResponseCode.Found,
            303 => RedirectAction.Types.RedirectResponseCode.SeeOther,
            307 => RedirectAction.Types.RedirectResponseCode.TemporaryRedirect,
            308 => RedirectAction.Types.RedirectResponseCode.PermanentRedirect,
            _ => null,
        };
        if (code is null)
        {
            return null;
        }
        var action = new RedirectAction { ResponseCode = code.Value, HostRedirect = redirect.Authority ?? "" };
        if (redirect.PrefixRewrite is { } prefix)
        {
            action.PrefixRewrite = prefix;
        }
        else if (redirect.Uri is { } uri)
        {
            action.PathRedirect = uri;
        }
        if (redirect.Scheme is { } scheme)
        {
            action.SchemeRedirect = scheme;
        }
        if (redirect.Port is not null || redirect.DerivePort is not null)
        {
            var port = redirect.Port ?? (redirect.DerivePort == RedirectDerivePort.FromRequestPort ? listenerPort : 0);
            // Bowline's listeners are plain HTTP, so a redirect without a scheme keeps http.
            var effectiveScheme = redirect.Scheme ?? "http";
            if ((port == 80 && effectiveScheme == "http") || (port == 443 && effectiveScheme == "https"))
            {
                port = 0;
            }
            action.PortRedirect = (uint)port;
        }
        return action;
    }

    public static DirectResponseAction DirectResponse(HttpDirectResponse response)
    {
        var action = new DirectResponseAction { Status = (uint)response.Status };
        if (response.BodyString is { } text)
        {
            action.Body = new DataSource { InlineString = text };
        }
        else if (response.BodyBytes is { } bytes)
        {
            action.Body = new DataSource { InlineBytes = ByteString.CopyFrom(bytes) };
        }
        return action;
    }

    /// <summary>Istio's mirror share: given percentages in millionths, 100% by default, none at 0.</summary>
    public static RouteAction.Types.RequestMirrorPolicy? Mirror(string cluster, HttpMirror mirror)
    {
        if (mirror.Percent is <= 0)
        {
            return null;
        }
        return new RouteAction.Types.RequestMirrorPolicy
        {
            Cluster = cluster,
            RuntimeFraction = new RuntimeFractionalPercent { DefaultValue = mirror.Percent is { } p ? EnvoyBuilders.Millionths(p) : EnvoyBuilders.Hundredths(100) },
            TraceSampled = false,
        };
    }

    /// <summary>The route's fault, for the fault filter's per-route config.</summary>
    public static FaultV3.HTTPFault Fault(HttpFault fault)
    {
        var result = new FaultV3.HTTPFault();
        if (fault.Delay is { } delay)
        {
            result.Delay = new Envoy.Extensions.Filters.Common.Fault.V3.FaultDelay
            {
                FixedDelay = Duration.FromTimeSpan(delay.FixedDelay),
                // Istio's rule: percentage in millionths; else the deprecated integer percent (0 when absent: no request delayed).
                Percentage = delay.Percentage is { } p ? EnvoyBuilders.Millionths(p) : EnvoyBuilders.Hundredths(delay.LegacyPercent),
            };
        }
        if (fault.Abort is { } abort)
        {
            result.Abort = new FaultV3.FaultAbort();
            if (abort.Percent is { } p)
            {
                result.Abort.Percentage = EnvoyBuilders.Millionths(p);
            }
            if (abort.HttpStatus is { } status)
            {
                result.Abort.HttpStatus = (uint)status;
            }
            else if (abort.GrpcStatus is { } grpc)
            {
                result.Abort.GrpcStatus = (uint)grpc;
            }
        }
        return result;
    }

    /// <summary>The route's CORS policy for the CORS filter's per-route config, as Istio builds it.</summary>
    public static CorsV3.CorsPolicy Cors(Config.CorsPolicy cors)
    {
        var policy = new CorsV3.CorsPolicy
        {
            // Istio's default FORWARD keeps Envoy's pre-1.30 behaviour: a preflight that matches no origin reaches the app.
            ForwardNotMatchingPreflights = cors.ForwardUnmatchedPreflights,
            FilterEnabled = new RuntimeFractionalPercent { DefaultValue = EnvoyBuilders.Hundredths(100) },
            AllowHeaders = string.Join(",", cors.AllowHeaders),
            AllowMethods = string.Join(",", cors.AllowMethods),
            ExposeHeaders = string.Join(",", cors.ExposeHeaders),
        };
        policy.AllowOriginStringMatch.AddRange(cors.AllowOrigins.Select(EnvoyBuilders.StringMatcher));
        if (cors.AllowCredentials is { } credentials)
        {
            policy.AllowCredentials = credentials;
        }
        if (cors.MaxAge is { } maxAge)
        {
            policy.MaxAge = ((long)maxAge.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return policy;
    }

    /// <summary>Attaches a per-route filter config under the filter's name.</summary>
    public static void PerFilter(Route route, string filter, IMessage config) => route.TypedPerFilterConfig[filter] = Any.Pack(config);
}
