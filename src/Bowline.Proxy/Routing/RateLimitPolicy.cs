using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Http;
using Proto = Envoy.Config.Route.V3.RateLimit;

namespace Bowline.Proxy.Routing;

/// <summary>
/// One of a route's <c>rate_limits</c>: its actions, in order, build one descriptor per request, which the local rate
/// limit filter matches against its configured descriptors. As in Envoy, an action that cannot produce its entry (a
/// header absent, no peer certificate) drops the whole descriptor unless it is told to skip only its own entry.
/// Compiled once per route update; per request it allocates nothing (the descriptor is looked up as a span).
/// </summary>
internal sealed class RateLimitPolicy
{
    /// <summary>Envoy's CEL rate limit descriptor; Bowline evaluates the one attribute a mesh needs from it.</summary>
    public const string ExpressionTypeUrl = "type.googleapis.com/envoy.extensions.rate_limit_descriptors.expr.v3.Descriptor";

    /// <summary>The CEL attribute for the caller's certificate identity (its first URI SAN: the SPIFFE id in a mesh).</summary>
    public const string PeerUriSanAttribute = "connection.uri_san_peer_certificate";

    private readonly DescriptorAction[] _actions;

    private RateLimitPolicy(DescriptorAction[] actions) => _actions = actions;

    public static RateLimitPolicy Compile(Proto proto, string where)
    {
        XdsFields.Check(proto, where, "stage", "actions");
        if (proto.Stage > 0)
        {
            // The local rate limit filter reads stage 0 only (its own default); another stage would never be applied.
            throw new ProxyConfigException($"{where}: stage {proto.Stage} is not supported; the local rate limit filter applies stage 0 only");
        }
        if (proto.Actions.Count == 0)
        {
            throw new ProxyConfigException($"{where}: actions is empty; give at least one");
        }
        return new RateLimitPolicy([.. proto.Actions.Select((a, i) => DescriptorAction.Compile(a, $"{where} actions[{i}]"))]);
    }

    /// <summary>
    /// Finds the request's descriptor in <paramref name="table"/> (keyed as <see cref="DescriptorKey"/> writes
    /// descriptors) without making its key a string: the entries are written into a stack buffer and looked up as a
    /// span. False when an action could not produce its entry and the descriptor is dropped, or when no entry is
    /// configured for it.
    /// </summary>
    public bool TryFind<T>(HttpStream stream, FrozenDictionary<string, T> table, [MaybeNullWhen(false)] out T found)
    {
        found = default;
        var key = new KeyWriter(stackalloc char[256]);
        try
        {
            var entries = 0;
            foreach (var action in _actions)
            {
                switch (action.Produce(stream, out var value, out var address))
                {
                    case Outcome.Produced:
                        if (entries++ > 0)
                        {
                            key.Append(DescriptorKey.Separator);
                        }
                        key.Append(action.Key);
                        key.Append(DescriptorKey.KeyValueSeparator);
                        if (address is not null)
                        {
                            key.Append(address);
                        }
                        else
                        {
                            key.Append(value);
                        }
                        break;
                    case Outcome.Dropped:
                        return false;
                }
            }
            return entries > 0 && table.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(key.Written, out found);
        }
        finally
        {
            key.Dispose();
        }
    }

    /// <summary>A descriptor key being written: on the stack, or in a pooled array when it outgrows it.</summary>
    private ref struct KeyWriter(Span<char> initial)
    {
        private Span<char> _chars = initial;
        private char[]? _rented;
        private int _length;

        public readonly ReadOnlySpan<char> Written => _chars[.._length];

        public void Append(char c)
        {
            Ensure(1);
            _chars[_length++] = c;
        }

        public void Append(ReadOnlySpan<char> text)
        {
            Ensure(text.Length);
            text.CopyTo(_chars[_length..]);
            _length += text.Length;
        }

        public void Append(System.Net.IPAddress address)
        {
            Ensure(64);
            address.TryFormat(_chars[_length..], out var written);
            _length += written;
        }

        private void Ensure(int more)
        {
            if (_length + more <= _chars.Length)
            {
                return;
            }
            var larger = System.Buffers.ArrayPool<char>.Shared.Rent(Math.Max(_chars.Length * 2, _length + more));
            _chars[.._length].CopyTo(larger);
            Dispose();
            _chars = _rented = larger;
        }

        public void Dispose()
        {
            if (_rented is { } rented)
            {
                _rented = null;
                System.Buffers.ArrayPool<char>.Shared.Return(rented);
            }
        }
    }

    private enum Outcome
    {
        Produced,
        SkipEntry,
        Dropped,
    }

    private enum ActionKind
    {
        GenericKey,
        RemoteAddress,
        RequestHeader,
        PeerUriSan,
    }

    private sealed record DescriptorAction(ActionKind Kind, string Key, string? Argument, bool SkipIfMissing)
    {
        public static DescriptorAction Compile(Proto.Types.Action action, string where)
        {
            switch (action.ActionSpecifierCase)
            {
                case Proto.Types.Action.ActionSpecifierOneofCase.GenericKey:
                    XdsFields.Check(action.GenericKey, where + " generic_key", "descriptor_value", "descriptor_key");
                    if (action.GenericKey.DescriptorValue.Length == 0)
                    {
                        throw new ProxyConfigException($"{where}: generic_key.descriptor_value is required");
                    }
                    return new(ActionKind.GenericKey, action.GenericKey.DescriptorKey is { Length: > 0 } key ? key : "generic_key", action.GenericKey.DescriptorValue, false);
                case Proto.Types.Action.ActionSpecifierOneofCase.RemoteAddress:
                    XdsFields.Check(action.RemoteAddress, where + " remote_address");
                    return new(ActionKind.RemoteAddress, "remote_address", null, false);
                case Proto.Types.Action.ActionSpecifierOneofCase.RequestHeaders:
                    XdsFields.Check(action.RequestHeaders, where + " request_headers", "header_name", "descriptor_key", "skip_if_absent");
                    if (action.RequestHeaders.HeaderName.Length == 0 || action.RequestHeaders.DescriptorKey.Length == 0)
                    {
                        throw new ProxyConfigException($"{where}: request_headers needs header_name and descriptor_key");
                    }
                    return new(ActionKind.RequestHeader, action.RequestHeaders.DescriptorKey, action.RequestHeaders.HeaderName, action.RequestHeaders.SkipIfAbsent);
                case Proto.Types.Action.ActionSpecifierOneofCase.Extension:
                    return Expression(action.Extension, where);
                default:
                    throw new ProxyConfigException($"{where}: rate limit action {action.ActionSpecifierCase} is not supported; use generic_key, remote_address, request_headers or the expression descriptor on {PeerUriSanAttribute}");
            }
        }

        private static DescriptorAction Expression(Envoy.Config.Core.V3.TypedExtensionConfig extension, string where)
        {
            if (extension.TypedConfig?.TypeUrl != ExpressionTypeUrl)
            {
                throw new ProxyConfigException($"{where}: rate limit extension {extension.Name} ({extension.TypedConfig?.TypeUrl ?? "no typed_config"}) is not supported; use {ExpressionTypeUrl}");
            }
            var expression = extension.TypedConfig.Unpack<Envoy.Extensions.RateLimitDescriptors.Expr.V3.Descriptor>();
            XdsFields.Check(expression, where + " expression descriptor", "descriptor_key", "skip_if_error", "text");
            if (expression.DescriptorKey.Length == 0)
            {
                throw new ProxyConfigException($"{where}: the expression descriptor needs a descriptor_key");
            }
            // Bowline has no CEL engine: it knows the attribute a per-identity limit needs, and refuses every other expression.
            if (expression.Text.Trim() != PeerUriSanAttribute)
            {
                throw new ProxyConfigException($"{where}: expression '{expression.Text}' is not supported; Bowline evaluates only '{PeerUriSanAttribute}' (the caller's mTLS identity)");
            }
            return new(ActionKind.PeerUriSan, expression.DescriptorKey, null, expression.SkipIfError);
        }

        /// <summary>The entry's value: a string, or for the remote address the address itself (written without a string).</summary>
        public Outcome Produce(HttpStream stream, out string? value, out System.Net.IPAddress? address)
        {
            address = Kind == ActionKind.RemoteAddress ? stream.Connection?.Metadata.SourceAddress ?? stream.Context.Connection.RemoteIpAddress : null;
            value = Kind switch
            {
                ActionKind.GenericKey => Argument,
                ActionKind.RemoteAddress => null,
                ActionKind.RequestHeader => stream.Context.Request.Headers.TryGetValue(Argument!, out var header) && header.Count > 0 ? header[0] : null,
                // A verified mesh peer only: a plaintext caller, or a certificate without a SPIFFE id, has none.
                _ => stream.Connection?.Peer?.Spiffe?.Uri,
            };
            return value is not null || address is not null ? Outcome.Produced : SkipIfMissing ? Outcome.SkipEntry : Outcome.Dropped;
        }
    }
}

/// <summary>How a descriptor is written as a dictionary key, on both sides (the route's actions and the filter's config).</summary>
internal static class DescriptorKey
{
    public const char Separator = '\u0001';

    public const char KeyValueSeparator = '\u0000';

    public static string Entry(string key, string value) => string.Concat(key, KeyValueSeparator.ToString(), value);
}
