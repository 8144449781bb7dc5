using Bowline.Proxy.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Bowline.Proxy.Tests.Http;

/// <summary>
/// The HCM's path normalization on the path Kestrel hands over (decoded but for %2F, dot segments resolved): what is
/// left to do for Istio's BASE, MERGE_SLASHES and DECODE_AND_MERGE_SLASHES.
/// </summary>
public sealed class PathNormalizationTests
{
    private static readonly PathNormalization Base = new(Normalize: true, MergeSlashes: false, EscapedSlashes.Keep);
    private static readonly PathNormalization MergeSlashes = new(Normalize: true, MergeSlashes: true, EscapedSlashes.Keep);
    private static readonly PathNormalization DecodeAndMergeSlashes = new(Normalize: true, MergeSlashes: true, EscapedSlashes.UnescapeAndForward);

    /// <summary>A request as Kestrel presents <paramref name="raw"/>: <paramref name="kestrelPath"/> is what Kestrel made of it.</summary>
    private static HttpRequest Request(string raw, string kestrelPath)
    {
        var context = new DefaultHttpContext();
        context.Features.Get<IHttpRequestFeature>()!.RawTarget = raw;
        context.Request.Path = kestrelPath;
        return context.Request;
    }

    [Theory]
    [InlineData("/public\\..\\admin", "/public\\..\\admin", "/admin")]
    [InlineData("/public%5C..%5Cadmin", "/public\\..\\admin", "/admin")]
    [InlineData("/a\\b", "/a\\b", "/a/b")]
    [InlineData("//admin", "//admin", "//admin")]
    [InlineData("/public%2F..%2Fadmin", "/public%2F..%2Fadmin", "/public%2F..%2Fadmin")]
    public void Base_BackslashesAreSeparators_EscapedSlashesStayEscaped(string raw, string kestrel, string expected)
    {
        var request = Request(raw, kestrel);

        Assert.Equal(PathNormalization.Verdict.Continue, Base.Apply(request));
        Assert.Equal(expected, request.Path.Value);
    }

    [Theory]
    [InlineData("//admin", "//admin", "/admin")]
    [InlineData("/a///b//", "/a///b//", "/a/b/")]
    [InlineData("/a\\\\b", "/a\\\\b", "/a/b")]
    public void MergeSlashes_CollapsesRuns(string raw, string kestrel, string expected)
    {
        var request = Request(raw, kestrel);

        MergeSlashes.Apply(request);

        Assert.Equal(expected, request.Path.Value);
    }

    [Theory]
    [InlineData("/public%2F..%2Fadmin", "/public%2F..%2Fadmin", "/admin")]
    [InlineData("/public%2f%2fadmin", "/public%2f%2fadmin", "/public/admin")]
    [InlineData("/a%2F.%2Fb", "/a%2F.%2Fb", "/a/b")]
    [InlineData("/%2F%2E%2E%2Fadmin", "/%2F..%2Fadmin", "/admin")]
    public void DecodeAndMergeSlashes_UnescapesThenNormalizesWhatThatUncovers(string raw, string kestrel, string expected)
    {
        var request = Request(raw, kestrel);

        Assert.Equal(PathNormalization.Verdict.Continue, DecodeAndMergeSlashes.Apply(request));
        Assert.Equal(expected, request.Path.Value);
    }

    [Fact]
    public void EscapedSlashes_RejectAndRedirect()
    {
        var reject = new PathNormalization(true, true, EscapedSlashes.Reject);
        var redirect = new PathNormalization(true, true, EscapedSlashes.UnescapeAndRedirect);
        var redirected = Request("/a%2Fb", "/a%2Fb");

        Assert.Equal(PathNormalization.Verdict.Reject, reject.Apply(Request("/a%2Fb", "/a%2Fb")));
        Assert.Equal(PathNormalization.Verdict.Reject, reject.Apply(Request("/a%5cb", "/a\\b")));
        Assert.Equal(PathNormalization.Verdict.Continue, reject.Apply(Request("/a/b?q=%2F", "/a/b")));
        Assert.Equal(PathNormalization.Verdict.Redirect, redirect.Apply(redirected));
        Assert.Equal("/a/b", redirected.Path.Value);
    }

    [Theory]
    [InlineData("/admin#x")]
    [InlineData("http://reviews:9080/admin#x")]
    public void AFragmentInTheTarget_IsRefused(string raw)
    {
        Assert.Equal(PathNormalization.Verdict.Reject, Base.Apply(Request(raw, "/admin#x")));
    }

    [Fact]
    public void AnEncodedHash_IsAPathCharacter_NotAFragment()
    {
        var request = Request("/a%23b", "/a#b");

        Assert.Equal(PathNormalization.Verdict.Continue, Base.Apply(request));
        Assert.Equal("/a#b", request.Path.Value);
    }

    [Theory]
    [InlineData("/a/./b", "/a/b")]
    [InlineData("/a/../b", "/b")]
    [InlineData("/../../b", "/b")]
    [InlineData("/a/b/..", "/a/")]
    [InlineData("/a/.", "/a/")]
    [InlineData("/a.b/..c/.d", "/a.b/..c/.d")]
    public void RemoveDotSegments_IsRfc3986(string path, string expected)
    {
        Assert.Equal(expected, PathNormalization.RemoveDotSegments(path));
    }
}
