using System.Globalization;
using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Http;

namespace Bowline.Proxy.Filters.Http.JwtAuthn;

/// <summary>
/// Verifies the token a verifier extracted, in Envoy's order: parse, issuer allowed at that location, the provider
/// (given, or found by issuer), time (<c>nbf</c>, <c>exp</c>, with skew), audiences, subjects, lifetime, then the
/// signature. A verified token then writes what its provider asks for: the payload header, claim headers, metadata,
/// and (unless <c>forward</c>) takes itself out of the request.
/// </summary>
/// <remarks>
/// Two tokens where one is expected (two <c>Authorization</c> headers, a header and an <c>access_token</c>
/// parameter) fail as <see cref="JwtStatus.JwtMultipleTokens"/> before either is looked at: RFC 6750 §2 forbids more
/// than one method per request, and an upstream that reads "the" token must not be handed one we did not verify.
/// Immutable and thread-safe.
/// </remarks>
internal sealed class JwtAuthenticator(IReadOnlyList<JwtProviderConfig> providers)
{
    /// <summary>The first provider (by name) with <paramref name="issuer"/>, else the first without an issuer, as Envoy looks them up.</summary>
    private JwtProviderConfig? FindByIssuer(string issuer) =>
        providers.FirstOrDefault(p => string.Equals(p.Issuer, issuer, StringComparison.Ordinal))
        ?? (issuer.Length > 0 ? providers.FirstOrDefault(p => p.Issuer.Length == 0) : null);

    public JwtStatus Authenticate(VerifyContext context, TokenExtractor extractor, JwtProviderConfig? provider, IReadOnlySet<string>? audiences, bool allowFailed, bool allowMissing)
    {
        var request = context.Stream.Context.Request;
        extractor.Sanitize(request.Headers);
        var tokens = context.Tokens;
        tokens.Clear();
        extractor.Extract(request, tokens);
        var status = tokens.Count switch
        {
            0 => JwtStatus.JwtMissed,
            1 => VerifyOne(context, tokens[0], provider, audiences),
            _ => JwtStatus.JwtMultipleTokens,
        };
        if (allowFailed || (allowMissing && status == JwtStatus.JwtMissed))
        {
            return JwtStatus.Ok;
        }
        return status;
    }

    private JwtStatus VerifyOne(VerifyContext context, ExtractedToken token, JwtProviderConfig? provider, IReadOnlySet<string>? audiences)
    {
        var status = ParsedJwt.TryParse(token.Token, out var jwt);
        if (status != JwtStatus.Ok)
        {
            return status;
        }
        if (!token.Issuers.Allows(jwt!.Issuer))
        {
            return JwtStatus.JwtUnknownIssuer;
        }
        provider ??= FindByIssuer(jwt.Issuer);
        if (provider is null)
        {
            return JwtStatus.JwtUnknownIssuer;
        }
        var now = context.Now;
        if (now + provider.ClockSkewSeconds < jwt.NotBefore)
        {
            return JwtStatus.JwtNotYetValid;
        }
        if (jwt.Expiry != 0 && now > jwt.Expiry + provider.ClockSkewSeconds)
        {
            return JwtStatus.JwtExpired;
        }
        if (!JwtProviderConfig.AudiencesAllowed(audiences ?? provider.AllowedAudiences, jwt.Audiences))
        {
            return JwtStatus.JwtAudienceNotAllowed;
        }
        if (provider.Subjects is { } subjects && !subjects.Matches(jwt.Subject))
        {
            return JwtStatus.JwtVerificationFail;
        }
        // max_lifetime bounds what is left of the token's life; require_expiration is an unbounded max_lifetime.
        if (provider.MaxLifetime is { } max && (jwt.Expiry == 0 || (max != TimeSpan.MaxValue && TimeSpan.FromSeconds(jwt.Expiry - now) >= max)))
        {
            return JwtStatus.JwtVerificationFail;
        }
        if (provider.Keys.Count == 0)
        {
            return JwtStatus.JwksNoValidKeys;
        }
        status = provider.Keys.Verify(jwt);
        if (status != JwtStatus.Ok)
        {
            return status;
        }
        OnVerified(context, token, provider, jwt);
        return JwtStatus.Ok;
    }

    private static void OnVerified(VerifyContext context, ExtractedToken token, JwtProviderConfig provider, ParsedJwt jwt)
    {
        var request = context.Stream.Context.Request;
        if (provider.ForwardPayloadHeader is { } payloadHeader)
        {
            var payload = jwt.PayloadBase64Url;
            if (provider.PadForwardPayloadHeader && payload.Length % 4 != 0)
            {
                payload = payload.PadRight(payload.Length + (4 - (payload.Length % 4)), '=');
            }
            request.Headers.Append(payloadHeader, payload);
        }
        var claimAdded = false;
        foreach (var (header, claim) in provider.ClaimToHeaders)
        {
            if (ClaimValue(jwt.Payload, claim) is { Length: > 0 } value)
            {
                request.Headers.Append(header, value);
                claimAdded = true;
            }
        }
        if (!provider.Forward)
        {
            TokenExtractor.Remove(request, token);
        }
        if (provider.HeaderInMetadata is { } headerKey)
        {
            context.AddExtracted(headerKey, jwt.Header);
        }
        if (provider.PayloadInMetadata is { } payloadKey)
        {
            context.AddExtracted(payloadKey, Normalize(jwt.Payload, provider.SpaceDelimitedClaims));
        }
        if (provider.ClearRouteCache && (claimAdded || provider.PayloadInMetadata is not null))
        {
            context.ClearRouteCache = true;
        }
    }

    /// <summary><c>normalize_payload_in_metadata</c>: listed claims that are space-delimited strings become lists (OAuth <c>scope</c>).</summary>
    private static Struct Normalize(Struct payload, IReadOnlyList<string> spaceDelimited)
    {
        if (spaceDelimited.Count == 0)
        {
            return payload;
        }
        var copy = payload.Clone();
        foreach (var claim in spaceDelimited)
        {
            if (copy.Fields.TryGetValue(claim, out var value) && value.KindCase == Value.KindOneofCase.StringValue)
            {
                var list = new ListValue();
                foreach (var part in value.StringValue.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    list.Values.Add(Value.ForString(part));
                }
                copy.Fields[claim] = new Value { ListValue = list };
            }
        }
        return copy;
    }

    /// <summary>
    /// The header value for a claim (<c>a.b</c> reaches into nested objects), formatted as Envoy does: strings as
    /// they are, whole non-negative numbers as integers and other numbers with six decimals, booleans as
    /// <c>true</c>/<c>false</c>, objects and arrays as base64 of their JSON. Null when the claim is absent.
    /// </summary>
    internal static string? ClaimValue(Struct payload, string claim)
    {
        Value? value = null;
        var fields = payload;
        foreach (var part in claim.Split('.'))
        {
            if (fields is null || !fields.Fields.TryGetValue(part, out value))
            {
                return null;
            }
            fields = value.KindCase == Value.KindOneofCase.StructValue ? value.StructValue : null;
        }
        return value!.KindCase switch
        {
            Value.KindOneofCase.StringValue => value.StringValue,
            Value.KindOneofCase.NumberValue => FormatNumber(value.NumberValue),
            Value.KindOneofCase.BoolValue => value.BoolValue ? "true" : "false",
            Value.KindOneofCase.StructValue or Value.KindOneofCase.ListValue => Convert.ToBase64String(Json(value)),
            _ => null,
        };
    }

    private static string FormatNumber(double number) =>
        number >= 0 && number < 18446744073709551615d && Math.Floor(number) == number
            ? ((ulong)number).ToString(CultureInfo.InvariantCulture)
            : number.ToString("F6", CultureInfo.InvariantCulture);

    private static byte[] Json(Value value)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            Write(writer, value);
        }
        return buffer.ToArray();
    }

    private static void Write(Utf8JsonWriter writer, Value value)
    {
        switch (value.KindCase)
        {
            case Value.KindOneofCase.StructValue:
                writer.WriteStartObject();
                foreach (var (name, field) in value.StructValue.Fields)
                {
                    writer.WritePropertyName(name);
                    Write(writer, field);
                }
                writer.WriteEndObject();
                break;
            case Value.KindOneofCase.ListValue:
                writer.WriteStartArray();
                foreach (var item in value.ListValue.Values)
                {
                    Write(writer, item);
                }
                writer.WriteEndArray();
                break;
            case Value.KindOneofCase.StringValue:
                writer.WriteStringValue(value.StringValue);
                break;
            case Value.KindOneofCase.NumberValue:
                writer.WriteNumberValue(value.NumberValue);
                break;
            case Value.KindOneofCase.BoolValue:
                writer.WriteBooleanValue(value.BoolValue);
                break;
            default:
                writer.WriteNullValue();
                break;
        }
    }
}
