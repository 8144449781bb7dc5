namespace Bowline.Samples.Bookinfo.Hosting;

/// <summary>The body of <c>GET /health</c>: <c>{"status":"Reviews is healthy"}</c>.</summary>
internal sealed record HealthStatus(string Status);
