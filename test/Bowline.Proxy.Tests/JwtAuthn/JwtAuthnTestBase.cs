using Bowline.Proxy.Configuration;
using Bowline.Proxy.Filters.Http;
using Bowline.Proxy.Filters.Http.JwtAuthn;
using Bowline.Proxy.Http;
using Bowline.Proxy.Routing;
using Bowline.Proxy.Stats;
using Bowline.Proxy.Tests.Infrastructure;
using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Http.JwtAuthn.V3;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Bowline.Proxy.Tests.JwtAuthn;

/// <summary>Builds jwt_authn configs the way Envoy and Istio write them, runs the filter on a request, and reads what it did.</summary>
public abstract class JwtAuthnTestBase : IDisposable
{
    protected const string Issuer = "https://issuer.example.com";
    protected const string FilterName = "envoy.filters.http.jwt_authn";
    protected const long Now = 1_700_000_000;

    private protected readonly FakeTimeProvider Time = new(DateTimeOffset.FromUnixTimeSeconds(Now));
    private protected readonly ProxyStats Stats = new();
    private protected readonly JwtTestKeys Keys = new();

    public void Dispose() => Keys.Dispose();

    private protected JwtProvider Provider(string issuer = Issuer, string? jwks = null, params string[] audiences)
    {
        var provider = new JwtProvider
        {
            Issuer = issuer,
            LocalJwks = new DataSource { InlineString = jwks ?? Keys.Jwks() },
            PayloadInMetadata = "payload",
        };
        provider.Audiences.Add(audiences);
        return provider;
    }

    /// <summary>One rule on prefix <c>/</c> requiring <paramref name="requirement"/>.</summary>
    private protected static JwtAuthentication Config(JwtRequirement requirement, params (string Name, JwtProvider Provider)[] providers)
    {
        var config = new JwtAuthentication();
        foreach (var (name, provider) in providers)
        {
            config.Providers[name] = provider;
        }
        config.Rules.Add(new RequirementRule { Match = new RouteMatch { Prefix = "/" }, Requires = requirement });
        return config;
    }

    /// <summary>What Istio's control plane emits for a RequestAuthentication with one JWT rule.</summary>
    private protected static JwtAuthentication Istio(JwtProvider provider)
    {
        var config = Config(AnyOf(Named("origins-0"), AllowMissing()), ("origins-0", provider));
        config.BypassCorsPreflight = true;
        return config;
    }

    private protected static JwtRequirement Named(string provider) => new() { ProviderName = provider };

    private protected static JwtRequirement AllowMissing() => new() { AllowMissing = new Empty() };

    private protected static JwtRequirement AllowMissingOrFailed() => new() { AllowMissingOrFailed = new Empty() };

    private protected static JwtRequirement AnyOf(params JwtRequirement[] requirements)
    {
        var list = new JwtRequirementOrList();
        list.Requirements.Add(requirements);
        return new JwtRequirement { RequiresAny = list };
    }

    private protected static JwtRequirement AllOf(params JwtRequirement[] requirements)
    {
        var list = new JwtRequirementAndList();
        list.Requirements.Add(requirements);
        return new JwtRequirement { RequiresAll = list };
    }

    private protected IHttpFilter Create(JwtAuthentication config, ILoggerFactory? loggers = null) =>
        new JwtAuthnFilterFactory().Create(FilterName, Any.Pack(config), new FilterFactoryContext(Stats, Time, new Random(1), loggers ?? NullLoggerFactory.Instance, "inbound_0.0.0.0_9080"), "listener virtualInbound http filter jwt");

    /// <summary>A payload with the usual claims; <paramref name="extra"/> is spliced in as raw JSON members.</summary>
    private protected static string Payload(string issuer = Issuer, string sub = "alice", long? exp = Now + 3600, long? nbf = null, string aud = "\"bookstore\"", string extra = "")
    {
        var members = new List<string> { $"\"iss\":\"{issuer}\"", $"\"sub\":\"{sub}\"", $"\"aud\":{aud}", $"\"iat\":{Now}" };
        if (exp is { } e)
        {
            members.Add($"\"exp\":{e}");
        }
        if (nbf is { } n)
        {
            members.Add($"\"nbf\":{n}");
        }
        if (extra.Length > 0)
        {
            members.Add(extra);
        }
        return "{" + string.Join(",", members) + "}";
    }

    private protected static Action<HttpRequest> Bearer(string token) => r => r.Headers.Authorization = "Bearer " + token;

    private protected async Task<(FilterStatus Status, HttpStream Stream)> RunAsync(IHttpFilter filter, Action<HttpRequest>? request = null, RouteEntry? route = null)
    {
        var stream = Streams.Create(Time, Stats, r =>
        {
            r.Scheme = "http";
            request?.Invoke(r);
        });
        if (route is not null)
        {
            var table = new RouteTable("9080", [(["*"], new VirtualHostEntry("vh", [route], null))]);
            stream = new HttpStream(stream.Context, new HttpChain("test", null, table, [], websocket: false, generateRequestId: false, new HttpChainStats(Stats, "test")), Time);
            stream.ResolveRoute();
        }
        var status = await filter.OnRequestAsync(stream).AsTask().WaitAsync(Timeouts.Default);
        return (status, stream);
    }

    /// <summary>A route whose typed_per_filter_config for the filter is <paramref name="perRoute"/>.</summary>
    private protected static RouteEntry RouteWith(PerRouteConfig perRoute) =>
        new("r", null, "/", null, true, [], [])
        {
            FilterConfigs = new Dictionary<string, PerFilterConfig>
            {
                [FilterName] = new(new JwtAuthnFilterFactory().CompilePerRoute(Any.Pack(perRoute), "route r"), false),
            },
        };

    private protected static Google.Protobuf.WellKnownTypes.Struct? MetadataPayload(HttpStream stream, string key = "payload") =>
        stream.Metadata?.Get(JwtAuthnFilter.MetadataNamespace, [key])?.StructValue;

    private protected static void AssertDenied(HttpStream stream, int code, string body, bool invalidToken = true)
    {
        Assert.Equal(code, stream.Context.Response.StatusCode);
        Assert.Equal(body, Streams.Body(stream));
        Assert.Equal("jwt_authn_access_denied{" + body.Replace(' ', '_') + "}", stream.Info.ResponseCodeDetails);
        var realm = "Bearer realm=\"http://reviews:9080/r\"";
        Assert.Equal(invalidToken ? realm + ", error=\"invalid_token\"" : realm, stream.Context.Response.Headers.WWWAuthenticate.ToString());
    }

    private protected long Counter(string name) => Stats.ValueOf($"http.inbound_0.0.0.0_9080.jwt_authn.{name}");
}
