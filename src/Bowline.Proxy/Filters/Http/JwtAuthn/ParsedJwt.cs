using System.Buffers.Text;
using System.Text;
using System.Text.Json;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.Proxy.Filters.Http.JwtAuthn;

/// <summary>
/// A JWT split and decoded the way Envoy's JWT library does it, before any key is looked at: the three sections,
/// the header and payload as protobuf <see cref="Struct"/>s (what the metadata carries, claims with their JSON types),
/// and the registered claims with the type checks that give Envoy's error texts. Parsing only: the signature is
/// checked by <see cref="JwksKeySet"/> with Microsoft.IdentityModel's providers.
/// </summary>
internal sealed class ParsedJwt
{
    /// <summary>The algorithms Envoy verifies, less EdDSA, which Microsoft.IdentityModel does not implement.</summary>
    private static readonly HashSet<string> SupportedAlgorithms = new(StringComparer.Ordinal)
    {
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "HS256", "HS384", "HS512",
    };

    private ParsedJwt(string alg, string kid, Struct header, Struct payload, string payloadBase64Url, byte[] signingInput, byte[] signature)
    {
        Alg = alg;
        Kid = kid;
        Header = header;
        Payload = payload;
        PayloadBase64Url = payloadBase64Url;
        SigningInput = signingInput;
        Signature = signature;
    }

    public string Alg { get; }

    /// <summary>The header's <c>kid</c>, empty when absent.</summary>
    public string Kid { get; }

    public Struct Header { get; }

    public Struct Payload { get; }

    /// <summary>The payload section exactly as it came, what <c>forward_payload_header</c> sends on.</summary>
    public string PayloadBase64Url { get; }

    /// <summary>The ASCII bytes of <c>header.payload</c>, what the signature covers.</summary>
    public byte[] SigningInput { get; }

    public byte[] Signature { get; }

    /// <summary><c>iss</c>, empty when absent.</summary>
    public string Issuer { get; private set; } = "";

    /// <summary><c>sub</c>, empty when absent.</summary>
    public string Subject { get; private set; } = "";

    public IReadOnlyList<string> Audiences { get; private set; } = [];

    /// <summary><c>exp</c> in Unix seconds, 0 when absent (as in Envoy).</summary>
    public long Expiry { get; private set; }

    /// <summary><c>nbf</c> in Unix seconds, 0 when absent.</summary>
    public long NotBefore { get; private set; }

    public static JwtStatus TryParse(string token, out ParsedJwt? jwt)
    {
        jwt = null;
        var first = token.IndexOf('.', StringComparison.Ordinal);
        var second = first < 0 ? -1 : token.IndexOf('.', first + 1);
        if (first < 0 || second < 0 || token.IndexOf('.', second + 1) >= 0)
        {
            return JwtStatus.JwtBadFormat;
        }
        var headerPart = token.AsSpan(0, first);
        var payloadPart = token.AsSpan(first + 1, second - first - 1);
        var signaturePart = token.AsSpan(second + 1);

        if (!TryDecode(headerPart, out var headerBytes))
        {
            return JwtStatus.JwtHeaderParseErrorBadBase64;
        }
        if (!TryParseObject(headerBytes, out var header))
        {
            return JwtStatus.JwtHeaderParseErrorBadJson;
        }
        if (!header.Fields.TryGetValue("alg", out var algValue) || algValue.KindCase != Value.KindOneofCase.StringValue)
        {
            return JwtStatus.JwtHeaderBadAlg;
        }
        // "none" and anything else unknown is refused before a key is chosen: an unsigned token never verifies.
        if (!SupportedAlgorithms.Contains(algValue.StringValue))
        {
            return JwtStatus.JwtHeaderNotImplementedAlg;
        }
        var kid = "";
        if (header.Fields.TryGetValue("kid", out var kidValue))
        {
            if (kidValue.KindCase != Value.KindOneofCase.StringValue)
            {
                return JwtStatus.JwtHeaderBadKid;
            }
            kid = kidValue.StringValue;
        }

        if (!TryDecode(payloadPart, out var payloadBytes))
        {
            return JwtStatus.JwtPayloadParseErrorBadBase64;
        }
        if (!TryParseObject(payloadBytes, out var payload))
        {
            return JwtStatus.JwtPayloadParseErrorBadJson;
        }
        if (!TryDecode(signaturePart, out var signature))
        {
            return JwtStatus.JwtSignatureParseErrorBadBase64;
        }
        var parsed = new ParsedJwt(algValue.StringValue, kid, header, payload, payloadPart.ToString(), Encoding.ASCII.GetBytes(token, 0, second), signature);
        var status = parsed.ReadRegisteredClaims();
        if (status == JwtStatus.Ok)
        {
            jwt = parsed;
        }
        return status;
    }

    private JwtStatus ReadRegisteredClaims()
    {
        var fields = Payload.Fields;
        if (fields.TryGetValue("iss", out var iss))
        {
            if (iss.KindCase != Value.KindOneofCase.StringValue)
            {
                return JwtStatus.JwtPayloadParseErrorIssNotString;
            }
            Issuer = iss.StringValue;
        }
        if (fields.TryGetValue("sub", out var sub))
        {
            if (sub.KindCase != Value.KindOneofCase.StringValue)
            {
                return JwtStatus.JwtPayloadParseErrorSubNotString;
            }
            Subject = sub.StringValue;
        }
        if (fields.TryGetValue("iat", out var iat) && !IsUnixTime(iat, out _))
        {
            return JwtStatus.JwtPayloadParseErrorIatNotInteger;
        }
        if (fields.TryGetValue("nbf", out var nbf))
        {
            if (!IsUnixTime(nbf, out var seconds))
            {
                return JwtStatus.JwtPayloadParseErrorNbfNotInteger;
            }
            NotBefore = seconds;
        }
        if (fields.TryGetValue("exp", out var exp))
        {
            if (!IsUnixTime(exp, out var seconds))
            {
                return JwtStatus.JwtPayloadParseErrorExpNotInteger;
            }
            Expiry = seconds;
        }
        if (fields.TryGetValue("jti", out var jti) && jti.KindCase != Value.KindOneofCase.StringValue)
        {
            return JwtStatus.JwtPayloadParseErrorJtiNotString;
        }
        if (fields.TryGetValue("aud", out var aud))
        {
            if (aud.KindCase == Value.KindOneofCase.StringValue)
            {
                Audiences = [aud.StringValue];
            }
            else if (aud.KindCase == Value.KindOneofCase.ListValue && aud.ListValue.Values.All(v => v.KindCase == Value.KindOneofCase.StringValue))
            {
                Audiences = [.. aud.ListValue.Values.Select(v => v.StringValue)];
            }
            else
            {
                return JwtStatus.JwtPayloadParseErrorAudNotString;
            }
        }
        return JwtStatus.Ok;
    }

    private static bool IsUnixTime(Value value, out long seconds)
    {
        seconds = 0;
        if (value.KindCase != Value.KindOneofCase.NumberValue)
        {
            return false;
        }
        var number = value.NumberValue;
        if (number < 0 || number > long.MaxValue || Math.Floor(number) != number)
        {
            return false;
        }
        seconds = (long)number;
        return true;
    }

    /// <summary>Base64url without padding, as JWS writes it; padding is tolerated as Envoy's decoder does.</summary>
    private static bool TryDecode(ReadOnlySpan<char> section, out byte[] bytes)
    {
        bytes = [];
        if (section.IsEmpty)
        {
            return true;
        }
        // The OperationStatus form: TryDecodeFromChars throws on malformed input, and malformed input is ordinary traffic.
        var buffer = new byte[Base64Url.GetMaxDecodedLength(section.Length)];
        if (Base64Url.DecodeFromChars(section, buffer, out var consumed, out var written) != System.Buffers.OperationStatus.Done || consumed != section.Length)
        {
            return false;
        }
        bytes = written == buffer.Length ? buffer : buffer[..written];
        return true;
    }

    private static bool TryParseObject(byte[] json, out Struct result)
    {
        result = new Struct();
        try
        {
            using var document = JsonDocument.Parse(json);
            if (document.RootElement.ValueKind != JsonValueKind.Object || !TryConvert(document.RootElement, out var value))
            {
                return false;
            }
            result = value.StructValue;
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>JSON to protobuf <see cref="Value"/> as protobuf's JSON mapping does it: numbers as doubles, arrays as lists.</summary>
    private static bool TryConvert(JsonElement element, out Value value)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var fields = new Struct();
                foreach (var property in element.EnumerateObject())
                {
                    if (!TryConvert(property.Value, out var field))
                    {
                        value = Value.ForNull();
                        return false;
                    }
                    fields.Fields[property.Name] = field;
                }
                value = Value.ForStruct(fields);
                return true;
            case JsonValueKind.Array:
                var list = new ListValue();
                foreach (var item in element.EnumerateArray())
                {
                    if (!TryConvert(item, out var converted))
                    {
                        value = Value.ForNull();
                        return false;
                    }
                    list.Values.Add(converted);
                }
                value = new Value { ListValue = list };
                return true;
            case JsonValueKind.String:
                value = Value.ForString(element.GetString()!);
                return true;
            case JsonValueKind.Number:
                var ok = element.TryGetDouble(out var number) && double.IsFinite(number);
                value = Value.ForNumber(number);
                return ok;
            case JsonValueKind.True:
                value = Value.ForBool(true);
                return true;
            case JsonValueKind.False:
                value = Value.ForBool(false);
                return true;
            default:
                value = Value.ForNull();
                return true;
        }
    }
}
