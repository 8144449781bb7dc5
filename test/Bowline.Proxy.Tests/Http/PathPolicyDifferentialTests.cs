using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Bowline.Proxy.Tests.Infrastructure;
using Bowline.Proxy.Tests.Xds;
using Bowline.Xds;
using CsCheck;
using Envoy.Config.Rbac.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using static Bowline.Proxy.Tests.Infrastructure.EnvoyResources;
using Matchers = Envoy.Type.Matcher.V3;

namespace Bowline.Proxy.Tests.Http;

/// <summary>
/// The differential test of path normalization against authorization: for thousands of generated request targets
/// built from the pieces attackers use (<c>..</c>, <c>%2e</c>, <c>%2F</c>, <c>%5C</c>, backslashes, double slashes,
/// <c>;params</c>, <c>%25</c>, case), the RBAC decision on one listener must be exactly the decision the same rules
/// give on the path the upstream actually received through an identical listener without RBAC. Zero bypasses: a
/// request the rules would refuse on the upstream's path is never let through, under each of Istio's normalizations.
/// </summary>
public sealed class PathPolicyDifferentialTests : IAsyncLifetime
{
    private readonly ConcurrentDictionary<string, string> _received = new();
    private WebApplication? _upstream;
    private FakeAdsServer? _ads;
    private RunningProxy? _proxy;
    private readonly Dictionary<string, (int Open, int Guarded)> _ports = [];

    /// <summary>Istio's mesh pathNormalization options, as its control plane writes them into the HCM.</summary>
    private static readonly (string Name, bool Merge, HttpConnectionManager.Types.PathWithEscapedSlashesAction Escaped)[] Normalizations =
    [
        ("BASE", false, HttpConnectionManager.Types.PathWithEscapedSlashesAction.KeepUnchanged),
        ("MERGE_SLASHES", true, HttpConnectionManager.Types.PathWithEscapedSlashesAction.KeepUnchanged),
        ("DECODE_AND_MERGE_SLASHES", true, HttpConnectionManager.Types.PathWithEscapedSlashesAction.UnescapeAndForward),
    ];

    /// <summary>The rules under test, as Istio translates <c>paths: ["/admin*", "*/secret", "/private"]</c> in a DENY policy.</summary>
    private static bool Denies(string path) => path.StartsWith("/admin", StringComparison.Ordinal) || path.EndsWith("/secret", StringComparison.Ordinal) || path == "/private";

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        _upstream = builder.Build();
        _upstream.Run(context =>
        {
            // The id the test put in the query ties what the upstream saw to the request that was sent.
            _received[context.Request.Query["probe"].ToString()] = context.Request.Path.Value ?? "";
            return context.Response.WriteAsync("ok");
        });
        await _upstream.StartAsync(Timeouts.Token());
        var upstreamPort = new Uri(_upstream.Urls.First()).Port;

        _ads = await FakeAdsServer.StartAsync();
        _proxy = await RunningProxy.StartAsync(_ads.Address);
        var listeners = new List<Google.Protobuf.IMessage>();
        foreach (var (name, merge, escaped) in Normalizations)
        {
            var (open, guarded) = (Ports.Free(), Ports.Free());
            _ports[name] = (open, guarded);
            listeners.Add(Listener($"open-{name}", open, "127.0.0.1", HttpConnectionManagerFilter(Normalized(Hcm($"open_{name}", "all"), merge, escaped))));
            listeners.Add(Listener($"guarded-{name}", guarded, "127.0.0.1", HttpConnectionManagerFilter(Normalized(Hcm($"guarded_{name}", "all", DenyPaths()), merge, escaped))));
        }
        await _ads.NextRequestAsync();
        await _ads.NextRequestAsync();
        await _ads.PushAsync(TypeUrls.Cluster, "c1", "n-c1", EdsCluster(ReviewsCluster));
        await _ads.PushAsync(TypeUrls.ClusterLoadAssignment, "e1", "n-e1", Endpoints(ReviewsCluster, ("127.0.0.1", upstreamPort, 1)));
        await _ads.PushAsync(TypeUrls.Listener, "l1", "n-l1", [.. listeners]);
        await _ads.PushAsync(TypeUrls.RouteConfiguration, "r1", "n-r1", RouteConfig("all", VirtualHost("all", ["*"], ClusterRoute("default", Prefix("/"), ReviewsCluster))));
        await _proxy.Host.Snapshots.WaitUntilAsync(s => s.Listeners.Count == listeners.Count && s.Listeners.Values.All(l => l.IsWarm)
            && s.Clusters.TryGetValue(ReviewsCluster, out var c) && c.Current?.Hosts.All.Count == 1, Timeouts.Token());
    }

    public async Task DisposeAsync()
    {
        await _proxy!.DisposeAsync();
        await _ads!.DisposeAsync();
        await _upstream!.DisposeAsync();
    }

    private static HttpConnectionManager Normalized(HttpConnectionManager hcm, bool merge, HttpConnectionManager.Types.PathWithEscapedSlashesAction escaped)
    {
        hcm.NormalizePath = true;
        hcm.MergeSlashes = merge;
        hcm.PathWithEscapedSlashesAction = escaped;
        return hcm;
    }

    private static Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpFilter DenyPaths()
    {
        static Permission Path(Matchers.StringMatcher matcher) => new() { UrlPath = new Matchers.PathMatcher { Path = matcher } };
        var policy = new Policy
        {
            Permissions =
            {
                new Permission
                {
                    OrRules = new Permission.Types.Set
                    {
                        Rules = { Path(new() { Prefix = "/admin" }), Path(new() { Suffix = "/secret" }), Path(new() { Exact = "/private" }) },
                    },
                },
            },
            Principals = { new Principal { Any = true } },
        };
        var rules = new RBAC { Action = RBAC.Types.Action.Deny };
        rules.Policies["ns[default]-policy[deny-paths]-rule[0]"] = policy;
        return new() { Name = "envoy.filters.http.rbac", TypedConfig = Any.Pack(new Envoy.Extensions.Filters.Http.Rbac.V3.RBAC { Rules = rules }) };
    }

    /// <summary>Sends <paramref name="target"/> byte for byte (no client library normalizes it first) and returns the status code.</summary>
    private static async Task<int> SendAsync(int port, string target)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port).WaitAsync(Timeouts.Default);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.Latin1.GetBytes($"GET {target} HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n\r\n")).AsTask().WaitAsync(Timeouts.Default);
        using var reader = new StreamReader(stream, Encoding.Latin1);
        var status = await reader.ReadLineAsync().WaitAsync(Timeouts.Default);
        return int.Parse(status!.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static readonly string[] Pieces =
    [
        "admin", "ADMIN", "Admin", "public", "secret", "private", "x", "", ".", "..", "%2e", "%2E%2e", ".%2e", "%61dmin", "adm%69n", "%2561dmin",
        "%2F", "%2f", "%5C", "%5c", "\\", "/", "//", ";", "admin;x=y", "secret;v=1", "%25", "%252F", "%00", "%3B", "a%20b", "%7e", "#", "%23",
    ];

    /// <summary>A request target: a slash, then pieces joined by slashes or glued together.</summary>
    private static readonly Gen<string> Targets =
        Gen.Select(Gen.Int[0, Pieces.Length - 1].Select(i => Pieces[i]).Array[1, 6], Gen.Bool.Array[6], (pieces, glue) =>
        {
            var target = new StringBuilder("/");
            for (var i = 0; i < pieces.Length; i++)
            {
                target.Append(pieces[i]);
                if (i < pieces.Length - 1 && !glue[i])
                {
                    target.Append('/');
                }
            }
            return target.ToString();
        });

    [Theory]
    [InlineData("BASE")]
    [InlineData("MERGE_SLASHES")]
    [InlineData("DECODE_AND_MERGE_SLASHES")]
    public async Task GeneratedPaths_TheDecisionIsTheRulesOnThePathTheUpstreamReceived(string normalization)
    {
        var (open, guarded) = _ports[normalization];
        var probes = 0;
        var denied = 0;

        await Targets.SampleAsync(async target =>
        {
            var probe = Interlocked.Increment(ref probes).ToString(System.Globalization.CultureInfo.InvariantCulture);
            var openId = $"{normalization}-open-{probe}";
            var openStatus = await SendAsync(open, $"{target}?probe={openId}");
            var guardedStatus = await SendAsync(guarded, $"{target}?probe={normalization}-guarded-{probe}");
            if (openStatus != 200)
            {
                // Refused before any rule ran (a fragment, %00, an escaped slash under REJECT): refused alike with rules.
                Assert.True(guardedStatus == openStatus, $"{target}: {openStatus} without rules, {guardedStatus} with them");
                return;
            }
            var upstreamPath = _received[openId];
            var shouldDeny = Denies(upstreamPath);
            if (shouldDeny)
            {
                Interlocked.Increment(ref denied);
            }
            Assert.True(guardedStatus == (shouldDeny ? 403 : 200),
                $"{target}: the upstream received {upstreamPath}, which the rules {(shouldDeny ? "deny" : "allow")}, but the guarded listener answered {guardedStatus}");
        }, iter: 1500, threads: 2);

        // The generator must actually reach the rules, or the property says nothing.
        Assert.True(denied > 50, $"only {denied} of {probes} generated paths reached a denied path upstream");
    }

    [Theory]
    [InlineData("//admin")]
    [InlineData("/%61dmin")]
    [InlineData("/public/../admin")]
    [InlineData("/public/%2e%2e/admin")]
    [InlineData("/public\\..\\admin")]
    [InlineData("/public%5C..%5Cadmin")]
    [InlineData("/admin;x=y")]
    [InlineData("/x/..//admin")]
    public async Task KnownBypasses_AreDeniedUnderMergeSlashes(string target)
    {
        Assert.Equal(403, await SendAsync(_ports["MERGE_SLASHES"].Guarded, target));
    }

    [Theory]
    [InlineData("/admin#x", 400)]
    [InlineData("/a%00b", 400)]
    [InlineData("/public%2F..%2Fadmin", 403)]
    public async Task DecodeAndMergeSlashes_EscapedSlashesAreSeparators_NulAndFragmentsAreRefused(string target, int status)
    {
        Assert.Equal(status, await SendAsync(_ports["DECODE_AND_MERGE_SLASHES"].Guarded, target));
    }
}
