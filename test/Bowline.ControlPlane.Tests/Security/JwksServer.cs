using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Bowline.ControlPlane.Tests.Security;

/// <summary>A local HTTP server on port 0 standing in for an issuer: each path answers what the test set, or hangs.</summary>
internal sealed class JwksServer : IAsyncDisposable
{
    /// <summary>The public key of Istio's JWT task samples (security/tools/jwt/samples/jwks.json), which signs its demo.jwt.</summary>
    public const string IstioSampleJwks = """{ "keys":[ {"e":"AQAB","kid":"DHFbpoIUqrY8t2zpA2qXfCmr5VO5ZEr4RzHU_-envvQ","kty":"RSA","n":"xAE7eB6qugXyCAG3yhh7pkDkT65pHymX-P7KfIupjf59vsdo91bSP9C8H07pSAGQO1MV_xFj9VswgsCg4R6otmg5PV2He95lZdHtOcU5DXIg_pbhLdKXbi66GlVeK6ABZOUW3WYtnNHD-91gVuoeJT_DwtGGcp4ignkgXfkiEm4sw-4sfb4qdt5oLbyVpmW6x9cfa7vs2WTfURiCrBoUqgBo_-4WTiULmmHSGZHOjzwa8WtrtOQGsAFjIbno85jp6MnGGGZPYZbDAa_b3y5u-YpW7ypZrvD8BgtKVjgtQgZhLAGezMt0ua3DRrWnKqTZ0BJ_EyxOGuHJrLsn00fnMQ"}]}""";

    /// <summary>A second key set, as after the issuer rotated its key.</summary>
    public const string RotatedJwks = """{"keys":[{"e":"AQAB","kid":"rotated","kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}]}""";

    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, (int Status, string Body)> _answers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _hanging = new(StringComparer.Ordinal);
    private int _requests;

    private JwksServer(WebApplication app) => _app = app;

    public Uri BaseAddress { get; private set; } = null!;

    public int Requests => Volatile.Read(ref _requests);

    public string Url(string path) => new Uri(BaseAddress, path).ToString();

    /// <summary>What <paramref name="path"/> answers from now on.</summary>
    public void Answer(string path, string body, int status = 200)
    {
        _hanging.TryRemove(path, out _);
        _answers[path] = (status, body);
    }

    /// <summary><paramref name="path"/> accepts the request and never answers.</summary>
    public void Hang(string path) => _hanging[path] = 0;

    public static async Task<JwksServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        var app = builder.Build();
        var server = new JwksServer(app);
        app.Run(server.HandleAsync);
        await app.StartAsync().WaitAsync(Infrastructure.TestTimeouts.Default);
        server.BaseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        return server;
    }

    private async Task HandleAsync(HttpContext context)
    {
        Interlocked.Increment(ref _requests);
        var path = context.Request.Path.Value ?? "/";
        if (_hanging.ContainsKey(path))
        {
            await Task.Delay(Timeout.Infinite, context.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
            return;
        }
        var (status, body) = _answers.TryGetValue(path, out var answer) ? answer : (404, "not found");
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body, context.RequestAborted);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().WaitAsync(Infrastructure.TestTimeouts.Default);
        await _app.DisposeAsync();
    }
}
