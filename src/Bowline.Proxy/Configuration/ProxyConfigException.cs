namespace Bowline.Proxy.Configuration;

/// <summary>xDS config the proxy cannot apply; the message becomes the NACK's <c>error_detail</c>, so it names the resource and the field.</summary>
internal sealed class ProxyConfigException(string message) : Exception(message);
