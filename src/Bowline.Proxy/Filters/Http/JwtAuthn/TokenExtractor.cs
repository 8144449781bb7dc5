using Microsoft.AspNetCore.Http;

namespace Bowline.Proxy.Filters.Http.JwtAuthn;

/// <summary>Where a token was found: how to take it out of the request when the provider does not forward it.</summary>
internal enum TokenSource
{
    Header,
    Param,
    Cookie,
}

/// <summary>The issuers whose providers named a location; a provider without an issuer allows any.</summary>
internal sealed class IssuerChecker
{
    private readonly HashSet<string> _issuers = new(StringComparer.Ordinal);
    private bool _any;

    public void Add(string issuer)
    {
        if (issuer.Length == 0)
        {
            _any = true;
        }
        else
        {
            _issuers.Add(issuer);
        }
    }

    public bool Allows(string issuer) => _any || _issuers.Contains(issuer);
}

/// <summary>One token found in the request, with the location it came from.</summary>
internal readonly record struct ExtractedToken(string Token, TokenSource Source, string Location, IssuerChecker Issuers);

/// <summary>
/// Envoy's JWT extractor for one provider or a set of them (the allow_missing verifiers read every provider's
/// locations): headers with their value prefix, query parameters and cookies, each remembering which issuers named
/// it. Without any location a provider reads <c>Authorization: Bearer</c> and the <c>access_token</c> parameter.
/// </summary>
/// <remarks>Immutable after construction; thread-safe.</remarks>
internal sealed class TokenExtractor
{
    private const string Base64UrlAndDot = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    private static readonly System.Buffers.SearchValues<char> TokenChars = System.Buffers.SearchValues.Create(Base64UrlAndDot);

    private readonly (string Name, string Prefix, IssuerChecker Issuers)[] _headers;
    private readonly (string Name, IssuerChecker Issuers)[] _params;
    private readonly (string Name, IssuerChecker Issuers)[] _cookies;
    private readonly string[] _sanitize;

    public TokenExtractor(IEnumerable<JwtProviderConfig> providers)
    {
        // Keyed as Envoy keys them (header name plus prefix), so providers sharing a location share one lookup and
        // a token there is found once, not once per provider.
        var headers = new Dictionary<(string, string), IssuerChecker>();
        var parameters = new Dictionary<string, IssuerChecker>(StringComparer.Ordinal);
        var cookies = new Dictionary<string, IssuerChecker>(StringComparer.Ordinal);
        var sanitize = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var provider in providers)
        {
            foreach (var (name, prefix) in provider.FromHeaders)
            {
                Checker(headers, (name, prefix)).Add(provider.Issuer);
            }
            foreach (var name in provider.FromParams)
            {
                Checker(parameters, name).Add(provider.Issuer);
            }
            foreach (var name in provider.FromCookies)
            {
                Checker(cookies, name).Add(provider.Issuer);
            }
            if (provider.ForwardPayloadHeader is { } payloadHeader)
            {
                sanitize.Add(payloadHeader);
            }
            foreach (var (header, _) in provider.ClaimToHeaders)
            {
                sanitize.Add(header);
            }
        }
        _headers = [.. headers.OrderBy(h => h.Key.Item1 + h.Key.Item2, StringComparer.Ordinal).Select(h => (h.Key.Item1, h.Key.Item2, h.Value))];
        _params = [.. parameters.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (p.Key, p.Value))];
        _cookies = [.. cookies.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => (c.Key, c.Value))];
        _sanitize = [.. sanitize];
    }

    private static IssuerChecker Checker<TKey>(Dictionary<TKey, IssuerChecker> map, TKey key) where TKey : notnull
    {
        if (!map.TryGetValue(key, out var checker))
        {
            map[key] = checker = new IssuerChecker();
        }
        return checker;
    }

    /// <summary>
    /// Removes the headers this filter writes (the forwarded payload, claim headers) before verification, so that a
    /// client cannot send its own copy and have the upstream trust it.
    /// </summary>
    public void Sanitize(IHeaderDictionary headers)
    {
        foreach (var header in _sanitize)
        {
            headers.Remove(header);
        }
    }

    /// <summary>Every token in the request's locations; each header value, parameter and cookie value counts.</summary>
    public void Extract(HttpRequest request, List<ExtractedToken> tokens)
    {
        foreach (var (name, prefix, issuers) in _headers)
        {
            if (!request.Headers.TryGetValue(name, out var values))
            {
                continue;
            }
            foreach (var value in values)
            {
                ExtractFromHeaderValue(value ?? "", name, prefix, issuers, tokens);
            }
        }
        if (_params.Length > 0 && request.QueryString.HasValue)
        {
            foreach (var (name, issuers) in _params)
            {
                if (request.Query.TryGetValue(name, out var values))
                {
                    foreach (var value in values)
                    {
                        tokens.Add(new ExtractedToken(value ?? "", TokenSource.Param, name, issuers));
                    }
                }
            }
        }
        foreach (var (name, issuers) in _cookies)
        {
            if (request.Cookies.TryGetValue(name, out var value))
            {
                tokens.Add(new ExtractedToken(value, TokenSource.Cookie, name, issuers));
            }
        }
    }

    /// <summary>
    /// Envoy's reading of a prefixed header: the prefix may stand anywhere in the value, and the token is the run of
    /// base64url characters and dots after it. A value holding the prefix twice (<c>Bearer a, Bearer b</c> folded
    /// into one line) yields two tokens, so it is refused like two headers.
    /// </summary>
    private static void ExtractFromHeaderValue(string value, string name, string prefix, IssuerChecker issuers, List<ExtractedToken> tokens)
    {
        if (prefix.Length == 0)
        {
            tokens.Add(new ExtractedToken(value, TokenSource.Header, name, issuers));
            return;
        }
        var from = 0;
        while (from < value.Length)
        {
            var at = value.IndexOf(prefix, from, StringComparison.Ordinal);
            if (at < 0)
            {
                return;
            }
            var rest = value.AsSpan(at + prefix.Length);
            var start = rest.IndexOfAny(TokenChars);
            if (start < 0)
            {
                // Nothing token-like follows: Envoy hands the whole value to the parser, which refuses it.
                tokens.Add(new ExtractedToken(value, TokenSource.Header, name, issuers));
                return;
            }
            var length = rest[start..].IndexOfAnyExcept(TokenChars);
            var token = length < 0 ? rest[start..] : rest.Slice(start, length);
            tokens.Add(new ExtractedToken(token.ToString(), TokenSource.Header, name, issuers));
            from = at + prefix.Length + start + token.Length;
        }
    }

    /// <summary>Takes a verified token out of the request before it is forwarded (cookies stay, as in Envoy).</summary>
    public static void Remove(HttpRequest request, ExtractedToken token)
    {
        switch (token.Source)
        {
            case TokenSource.Header:
                request.Headers.Remove(token.Location);
                break;
            case TokenSource.Param:
                var kept = request.Query.Where(p => !string.Equals(p.Key, token.Location, StringComparison.Ordinal))
                    .SelectMany(p => p.Value.Count == 0 ? [new KeyValuePair<string, string?>(p.Key, "")] : p.Value.Select(v => new KeyValuePair<string, string?>(p.Key, v)));
                request.QueryString = QueryString.Create(kept);
                break;
            case TokenSource.Cookie:
                break;
        }
    }
}
