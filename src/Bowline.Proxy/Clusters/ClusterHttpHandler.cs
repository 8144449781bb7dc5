namespace Bowline.Proxy.Clusters;

/// <summary>
/// An <see cref="HttpMessageHandler"/> that sends through an Envoy cluster, as Envoy's own gRPC and HTTP clients
/// (<c>envoy_grpc</c>, <c>http_uri.cluster</c>) do: each request goes to a host the cluster's load balancer picks, over
/// the cluster's pool and transport socket (mTLS to a mesh collector), and keeps its authority. What the proxy itself
/// sends (spans to a collector) uses it. The cluster is found by name among the live ones on every request, not held:
/// it may arrive after the tracer that names it, or go and come back, as CDS decides.
/// </summary>
internal sealed class ClusterHttpHandler(ClusterManager clusters, string clusterName) : HttpMessageHandler
{
    /// <summary>
    /// OTLP/HTTP exports synchronously, on the exporter's own thread (never a request's): blocking that thread on the
    /// pool's asynchronous send is what it asks for.
    /// </summary>
    protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken) =>
        SendAsync(request, cancellationToken).GetAwaiter().GetResult();

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var cluster = Find();
        if (cluster?.Current is not { } snapshot)
        {
            throw new HttpRequestException($"cluster {clusterName} is not configured (no CDS resource of that name)");
        }
        if (snapshot.Config.Balancer.Pick(snapshot.Hosts, null, 0) is not { } host)
        {
            cluster.Stats.NoHealthyUpstream.Increment();
            throw new HttpRequestException($"cluster {cluster.Name} has no healthy host");
        }
        var target = request.RequestUri ?? throw new InvalidOperationException("the request has no URI");
        request.Headers.Host ??= target.Authority;
        request.RequestUri = new Uri(host.Prefix + target.PathAndQuery, UriKind.Absolute);
        return await SendToHostAsync(cluster, snapshot, host, request, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Sends <paramref name="request"/>, already addressed to <paramref name="host"/>, over the cluster's pool with the
    /// host's TLS, counted on the cluster's stats as the router counts its own. Shared by everything that reaches a
    /// cluster outside the router (mirrors, span exports).
    /// </summary>
    public static async Task<HttpResponseMessage> SendToHostAsync(ClusterState cluster, ClusterSnapshot snapshot, UpstreamEndpoint host, HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (snapshot.Config.Transport is { } transport)
        {
            request.Options.Set(ConnectionPools.TlsOption, snapshot.Hosts.TlsOf(host, transport.Unlabelled));
            request.Options.Set(ConnectionPools.EndpointOption, host);
        }
        cluster.Stats.RequestsTotal.Increment();
        var invoker = snapshot.Config.Invoker;
        invoker.Enter();
        try
        {
            var response = await invoker.SendAsync(request, cancellationToken).ConfigureAwait(false);
            cluster.Stats.CountResponse((int)response.StatusCode);
            return response;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
        {
            cluster.Stats.Resets.Increment();
            throw;
        }
        finally
        {
            invoker.Exit();
        }
    }

    private ClusterState? Find()
    {
        foreach (var state in clusters.Live)
        {
            if (state.Name == clusterName)
            {
                return state;
            }
        }
        return null;
    }
}
