using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Bowline.Proxy.Http;

/// <summary>What the HCM does with <c>%2F</c> and <c>%5C</c> in a path (Envoy's <c>path_with_escaped_slashes_action</c>).</summary>
internal enum EscapedSlashes
{
    /// <summary>Left as they are: to routing, RBAC and the upstream an escaped slash is not a separator.</summary>
    Keep,

    /// <summary>Answered 400.</summary>
    Reject,

    /// <summary>Unescaped and normalized again; the request goes on with the result.</summary>
    UnescapeAndForward,

    /// <summary>Unescaped and normalized again; the client is redirected (307) to the result.</summary>
    UnescapeAndRedirect,
}

/// <summary>
/// The HCM's path normalization (Envoy's <c>normalize_path</c>, <c>merge_slashes</c>,
/// <c>path_with_escaped_slashes_action</c>; Istio's mesh <c>pathNormalization</c>), applied once before routing. The
/// normalized path replaces the request's path, so routing, RBAC and the upstream all see one and the same path: a
/// policy decides on what the upstream receives, which is what makes <c>/public/../admin</c>-style bypasses impossible.
/// </summary>
/// <remarks>
/// Kestrel has already done part of RFC 3986 normalization before the proxy sees the request: it percent-decodes the
/// path (all but <c>%2F</c>, which it keeps escaped), resolves <c>.</c> and <c>..</c> segments, and refuses <c>%00</c>.
/// What is left here: a fragment in the request target (invalid in HTTP; refused), backslashes (a separator to many
/// servers: made slashes, as Envoy's normalizer does), escaped slashes per the action, dot segments those uncover, and
/// merging slashes. A request that needs none of it costs one scan of the path and allocates nothing.
/// </remarks>
internal sealed record PathNormalization(bool Normalize, bool MergeSlashes, EscapedSlashes EscapedSlashes)
{
    /// <summary>Envoy's defaults: no normalization beyond Kestrel's, escaped slashes kept.</summary>
    public static readonly PathNormalization Default = new(false, false, EscapedSlashes.Keep);

    /// <summary>What became of a request's path.</summary>
    public enum Verdict
    {
        Continue,
        Reject,
        Redirect,
    }

    /// <summary>Normalizes <paramref name="request"/>'s path in place; on <see cref="Verdict.Redirect"/>, the path holds the redirect target.</summary>
    public Verdict Apply(HttpRequest request)
    {
        var raw = request.HttpContext.Features.Get<IHttpRequestFeature>()?.RawTarget ?? "";
        var query = raw.IndexOf('?');
        var target = query < 0 ? raw.AsSpan() : raw.AsSpan(0, query);
        if (target.Contains('#'))
        {
            // A fragment is never part of an HTTP request target (RFC 9112 3.2): only a hostile or broken client sends one.
            return Verdict.Reject;
        }
        var escapedSlash = ContainsEscapedSlash(target);
        if (escapedSlash && EscapedSlashes == EscapedSlashes.Reject)
        {
            return Verdict.Reject;
        }
        var path = request.Path.Value ?? "/";
        var unescape = escapedSlash && EscapedSlashes is EscapedSlashes.UnescapeAndForward or EscapedSlashes.UnescapeAndRedirect;
        if (!unescape && !NeedsWork(path))
        {
            return Verdict.Continue;
        }
        var normalized = Normalized(path, unescape);
        if (normalized == path)
        {
            return Verdict.Continue;
        }
        request.Path = new PathString(normalized);
        return unescape && EscapedSlashes == EscapedSlashes.UnescapeAndRedirect ? Verdict.Redirect : Verdict.Continue;
    }

    private bool NeedsWork(string path) =>
        (Normalize && path.Contains('\\')) || (MergeSlashes && path.Contains("//", StringComparison.Ordinal));

    private string Normalized(string path, bool unescape)
    {
        if (unescape)
        {
            // Kestrel already turned %5C into a backslash; %2F is all that is still escaped.
            path = path.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase).Replace('\\', '/');
        }
        if (Normalize || unescape)
        {
            path = RemoveDotSegments(path.Replace('\\', '/'));
        }
        if (MergeSlashes || unescape)
        {
            path = Merge(path);
        }
        return path;
    }

    private static bool ContainsEscapedSlash(ReadOnlySpan<char> target)
    {
        for (var i = target.IndexOf('%'); i >= 0 && i + 2 < target.Length; i++)
        {
            if (target[i] == '%' && ((target[i + 1] == '2' && (target[i + 2] | 0x20) == 'f') || (target[i + 1] == '5' && (target[i + 2] | 0x20) == 'c')))
            {
                return true;
            }
        }
        return false;
    }

    private static string Merge(string path)
    {
        if (!path.Contains("//", StringComparison.Ordinal))
        {
            return path;
        }
        var merged = new StringBuilder(path.Length);
        foreach (var c in path)
        {
            if (c != '/' || merged.Length == 0 || merged[^1] != '/')
            {
                merged.Append(c);
            }
        }
        return merged.ToString();
    }

    /// <summary>RFC 3986 5.2.4 over a path that starts with a slash; <c>..</c> above the root stays at the root.</summary>
    internal static string RemoveDotSegments(string path)
    {
        if (!path.Contains("/.", StringComparison.Ordinal))
        {
            return path;
        }
        var segments = new List<string>();
        var parts = path.Split('/');
        // parts[0] is the empty string before the leading slash.
        for (var i = 1; i < parts.Length; i++)
        {
            var segment = parts[i];
            var last = i == parts.Length - 1;
            if (segment == ".")
            {
                if (last)
                {
                    segments.Add("");
                }
                continue;
            }
            if (segment == "..")
            {
                if (segments.Count > 0)
                {
                    segments.RemoveAt(segments.Count - 1);
                }
                if (last)
                {
                    segments.Add("");
                }
                continue;
            }
            segments.Add(segment);
        }
        return "/" + string.Join('/', segments);
    }
}
