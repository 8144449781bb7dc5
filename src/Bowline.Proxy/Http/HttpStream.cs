using Bowline.Proxy.Configuration;
using Bowline.Proxy.Filters.Http;
using Bowline.Proxy.Routing;
using Microsoft.AspNetCore.Http;

namespace Bowline.Proxy.Http;

/// <summary>
/// One request as the HTTP connection manager runs it: the light per-request object of Envoy's filter model. It
/// carries the request, the chain and route chosen for it, the <see cref="RequestInfo"/> every filter writes to, and
/// the response filters that asked to see the response headers. Filters keep their per-request state here, not in
/// themselves.
/// </summary>
/// <remarks>Owned by the request; not thread-safe.</remarks>
internal sealed class HttpStream(HttpContext context, HttpChain chain, TimeProvider time)
{
    private IHttpResponseFilter? _responseFilter;
    private List<IHttpResponseFilter>? _moreResponseFilters;
    private bool _responseHeadersDone;
    private List<(string Name, string Value)>? _addedResponseHeaders;

    public HttpContext Context { get; } = context;

    public HttpChain Chain { get; } = chain;

    public TimeProvider Time { get; } = time;

    public RequestInfo Info { get; } = new();

    /// <summary>The connection's chain, what the listener filters saw and the verified peer; null off the connection acceptor (tests, admin).</summary>
    public Listeners.ConnectionChain? Connection => Context.Features.Get<Listeners.ConnectionChain>();

    /// <summary>What filters published for later filters (a verified JWT for RBAC); null until one writes.</summary>
    public DynamicMetadata? Metadata { get; private set; }

    /// <summary>The request's dynamic metadata, created on first write.</summary>
    public DynamicMetadata WritableMetadata => Metadata ??= new DynamicMetadata();

    /// <summary>This hop's span when the request is sampled (set by the chain's tracing before any filter runs).</summary>
    public System.Diagnostics.Activity? Span { get; set; }

    /// <summary>The router's own client span, when the tracing spawns one (<c>spawn_upstream_span</c>).</summary>
    public System.Diagnostics.Activity? UpstreamSpan { get; set; }

    public VirtualHostEntry? VirtualHost { get; private set; }

    /// <summary>The route the request matched, or null (the router answers 404 NR).</summary>
    public RouteEntry? Route { get; private set; }

    /// <summary>Matches the request against the chain's route table: once before any filter runs, again if a filter clears the route cache.</summary>
    public void ResolveRoute()
    {
        // Run again when a filter changed what routing reads (jwt_authn's clear_route_cache): start from nothing.
        Route = null;
        Info.RouteName = Info.UpstreamCluster = null;
        Info.UpstreamService = null;
        VirtualHost = Chain.Routes?.FindVirtualHost(Context.Request.Host.Value ?? "");
        if (VirtualHost is null)
        {
            return;
        }
        foreach (var route in VirtualHost.Routes)
        {
            if (route.Matches(Context.Request))
            {
                Route = route;
                Info.RouteName = route.Name;
                // As Envoy's route resolution sets the upstream cluster's info: a local reply before the router (a fault,
                // RBAC) still reports the service it was meant for. A weighted pick is the router's, so only one target here.
                if (route.Action?.Targets is [var only])
                {
                    Info.UpstreamCluster = only.ClusterName;
                    Info.UpstreamService = only.Cluster.Current?.Config.Service;
                }
                return;
            }
        }
    }

    /// <summary>The route's (else the virtual host's) compiled <c>typed_per_filter_config</c> for the filter named <paramref name="filterName"/>.</summary>
    public T? FilterConfig<T>(string filterName) where T : class =>
        (Route?.FilterConfigs?.GetValueOrDefault(filterName) ?? VirtualHost?.FilterConfigs?.GetValueOrDefault(filterName))?.Config as T;

    /// <summary>Envoy's <c>disabled</c>: a filter off by default runs only where a route enables it, and a route may disable any filter.</summary>
    public bool IsEnabled(string filterName, bool disabledByDefault)
    {
        var overridden = Route?.FilterConfigs?.GetValueOrDefault(filterName) ?? VirtualHost?.FilterConfigs?.GetValueOrDefault(filterName);
        return overridden?.Disabled is { } disabled ? !disabled : !disabledByDefault;
    }

    public void AddResponseFilter(IHttpResponseFilter filter)
    {
        if (_responseFilter is null)
        {
            _responseFilter = filter;
        }
        else
        {
            (_moreResponseFilters ??= []).Add(filter);
        }
    }

    /// <summary>The response was cleared (a retry, a local reply): the response-header work runs again for the next one.</summary>
    public void ResponseCleared() => _responseHeadersDone = false;

    /// <summary>Adds a header to whatever response this request gets, proxied or local (a filter's x-ratelimit-* headers).</summary>
    public void AddResponseHeader(string name, string value) => (_addedResponseHeaders ??= []).Add((name, value));

    /// <summary>
    /// Runs once, just before the response headers are sent (a proxied response or a local reply): response filters
    /// in reverse order, then the route's response header mutations.
    /// </summary>
    public void OnResponseHeaders()
    {
        if (_responseHeadersDone)
        {
            return;
        }
        _responseHeadersDone = true;
        if (_moreResponseFilters is { } more)
        {
            for (var i = more.Count - 1; i >= 0; i--)
            {
                more[i].OnResponseHeaders(this);
            }
        }
        _responseFilter?.OnResponseHeaders(this);
        Route?.ResponseHeaders?.Apply(Context.Response.Headers, this);
        if (_addedResponseHeaders is { } added)
        {
            foreach (var (name, value) in added)
            {
                Context.Response.Headers.Append(name, value);
            }
        }
    }

    /// <summary>
    /// An Envoy-style local reply: status, a plain-text body, the response flags in a header and in the record. If the
    /// response has already started, the only honest signal left is to reset the stream.
    /// </summary>
    public Task SendLocalReplyAsync(int status, string body, ResponseFlags flags, string details)
    {
        Info.Flags |= flags;
        Info.ResponseCodeDetails = details;
        Info.ResponseCode = status;
        var response = Context.Response;
        if (response.HasStarted)
        {
            Context.Abort();
            return Task.CompletedTask;
        }
        response.Clear();
        _responseHeadersDone = false;
        response.StatusCode = status;
        if (flags != ResponseFlags.None)
        {
            response.Headers[ResponseFlagCodes.Header] = ResponseFlagCodes.Format(flags);
        }
        if (body.Length > 0)
        {
            response.ContentType = "text/plain";
        }
        OnResponseHeaders();
        if (body.Length == 0)
        {
            return Task.CompletedTask;
        }
        // The local reply's body is what the client is sent: counted as an upstream body would be.
        Info.BytesSent = System.Text.Encoding.UTF8.GetByteCount(body);
        return response.WriteAsync(body);
    }
}
