using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace Bowline.Proxy.Forwarding;

/// <summary>
/// YARP's default transform, keeping the client's <c>Host</c>/<c>:authority</c> as Envoy does (the app behind the
/// sidecar sees the name it was called by) and adding <c>x-request-id</c> when the client sent none.
/// </summary>
internal sealed class AuthorityPreservingTransformer : HttpTransformer
{
    public static readonly AuthorityPreservingTransformer Instance = new(generateRequestId: false);
    public static readonly AuthorityPreservingTransformer WithRequestId = new(generateRequestId: true);

    private readonly bool _generateRequestId;

    private AuthorityPreservingTransformer(bool generateRequestId) => _generateRequestId = generateRequestId;

    public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
    {
        await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken).ConfigureAwait(false);
        proxyRequest.Headers.Host = httpContext.Request.Host.Value;
        if (_generateRequestId && !httpContext.Request.Headers.ContainsKey("x-request-id"))
        {
            proxyRequest.Headers.TryAddWithoutValidation("x-request-id", Guid.NewGuid().ToString());
        }
    }
}
