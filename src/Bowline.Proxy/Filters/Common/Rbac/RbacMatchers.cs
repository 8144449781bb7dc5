using System.Net;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Http;
using Bowline.Proxy.Routing;
using Envoy.Config.Rbac.V3;
using Google.Protobuf.WellKnownTypes;
using EnvoyMatchers = Envoy.Type.Matcher.V3;

namespace Bowline.Proxy.Filters.Common.Rbac;

/// <summary>
/// What an RBAC rule is evaluated against: an HTTP request on its connection (the HTTP filter), or a connection alone
/// (the network filter, which compiles no matcher that needs a request).
/// </summary>
internal readonly struct RbacInput
{
    public RbacInput(HttpStream stream)
    {
        Stream = stream;
        Connection = stream.Connection;
    }

    public RbacInput(Listeners.ConnectionChain connection) => Connection = connection;

    /// <summary>The request; null at connection level.</summary>
    public HttpStream? Stream { get; }

    public Listeners.ConnectionChain? Connection { get; }

    /// <summary>The request, for the matchers only the HTTP filter compiles.</summary>
    public HttpStream Http => Stream ?? throw new InvalidOperationException("a request matcher was evaluated at connection level; the network RBAC filter must not compile it");
}

/// <summary>
/// One compiled RBAC permission or principal (Envoy's <c>envoy.config.rbac.v3</c> trees): built once per config
/// update, evaluated per request against the request, its connection and its dynamic metadata. Immutable.
/// </summary>
internal abstract class RbacMatcher
{
    public abstract bool Matches(in RbacInput input);

    /// <summary>Compiles a permission (what is asked for: path, method, host, destination).</summary>
    public static RbacMatcher Permission(Permission permission, string where, bool http = true)
    {
        switch (permission.RuleCase)
        {
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.Any:
                return permission.Any ? Always.Instance : throw new ProxyConfigException($"{where}: any must be true (Envoy's rule); remove the permission to match nothing");
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.AndRules:
                return new All([.. permission.AndRules.Rules.Select((p, i) => Permission(p, $"{where}.and_rules[{i}]", http))]);
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.OrRules:
                return new AnyOf([.. permission.OrRules.Rules.Select((p, i) => Permission(p, $"{where}.or_rules[{i}]", http))]);
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.NotRule:
                return new Not(Permission(permission.NotRule, where + ".not_rule", http));
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.Header when http:
                return new Header(RouteCompiler.Header(permission.Header, where + ".header"));
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.UrlPath when http:
                return UrlPath(permission.UrlPath, where + ".url_path");
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.DestinationIp:
                return new Address(AddressKind.Destination, Cidr(permission.DestinationIp, where + ".destination_ip"));
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.DestinationPort:
                return new DestinationPorts((int)permission.DestinationPort, (int)permission.DestinationPort + 1);
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.DestinationPortRange:
                return new DestinationPorts((int)permission.DestinationPortRange.Start, (int)permission.DestinationPortRange.End);
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.Metadata when http:
                return Metadata(permission.Metadata, where + ".metadata");
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.RequestedServerName:
                return new ServerName(StringMatcher.From(permission.RequestedServerName, where + ".requested_server_name"));
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.Header or Envoy.Config.Rbac.V3.Permission.RuleOneofCase.UrlPath or Envoy.Config.Rbac.V3.Permission.RuleOneofCase.Metadata:
                throw new ProxyConfigException($"{where}: {permission.RuleCase} matches a request, and a network RBAC filter sees only the connection; match it in the HTTP RBAC filter instead");
            default:
                throw new ProxyConfigException($"{where}: permission rule {permission.RuleCase} is not supported; use and_rules, or_rules, any, header, url_path, destination_ip, destination_port(_range), metadata, not_rule or requested_server_name");
        }
    }

    /// <summary>Compiles a principal (who is asking: the verified peer, its address, its token).</summary>
    public static RbacMatcher Principal(Principal principal, string where, bool http = true)
    {
        switch (principal.IdentifierCase)
        {
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.Any:
                return principal.Any ? Always.Instance : throw new ProxyConfigException($"{where}: any must be true (Envoy's rule); remove the principal to match no one");
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.AndIds:
                return new All([.. principal.AndIds.Ids.Select((p, i) => Principal(p, $"{where}.and_ids[{i}]", http))]);
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.OrIds:
                return new AnyOf([.. principal.OrIds.Ids.Select((p, i) => Principal(p, $"{where}.or_ids[{i}]", http))]);
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.NotId:
                return new Not(Principal(principal.NotId, where + ".not_id", http));
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.Authenticated:
                XdsFields.Check(principal.Authenticated, where + ".authenticated", "principal_name");
                return new Authenticated(principal.Authenticated.PrincipalName is { } name ? StringMatcher.From(name, where + ".authenticated.principal_name") : null);
#pragma warning disable CS0612 // source_ip is deprecated in favour of direct_remote_ip, and means the same; older control planes send it
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.SourceIp:
                return new Address(AddressKind.DirectRemote, Cidr(principal.SourceIp, where + ".source_ip"));
#pragma warning restore CS0612
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.DirectRemoteIp:
                return new Address(AddressKind.DirectRemote, Cidr(principal.DirectRemoteIp, where + ".direct_remote_ip"));
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.RemoteIp:
                return new Address(AddressKind.Remote, Cidr(principal.RemoteIp, where + ".remote_ip"));
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.Header when http:
                return new Header(RouteCompiler.Header(principal.Header, where + ".header"));
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.UrlPath when http:
                return UrlPath(principal.UrlPath, where + ".url_path");
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.Metadata when http:
                return Metadata(principal.Metadata, where + ".metadata");
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.Header or Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.UrlPath or Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.Metadata:
                throw new ProxyConfigException($"{where}: {principal.IdentifierCase} matches a request, and a network RBAC filter sees only the connection; match it in the HTTP RBAC filter instead");
            default:
                throw new ProxyConfigException($"{where}: principal identifier {principal.IdentifierCase} is not supported; use and_ids, or_ids, any, authenticated, direct_remote_ip, remote_ip, header, url_path, metadata or not_id");
        }
    }

    private static UrlPathMatcher UrlPath(EnvoyMatchers.PathMatcher path, string where)
    {
        XdsFields.Check(path, where, "path");
        return path.Path is null
            ? throw new ProxyConfigException($"{where}: a path matcher needs path")
            : new UrlPathMatcher(StringMatcher.From(path.Path, where + ".path"));
    }

    private static RbacMatcher Metadata(EnvoyMatchers.MetadataMatcher metadata, string where)
    {
        XdsFields.Check(metadata, where, "filter", "path", "value", "invert");
        if (metadata.Path.Count == 0 || metadata.Value is null)
        {
            throw new ProxyConfigException($"{where}: a metadata matcher needs filter, a path and a value");
        }
        var keys = metadata.Path.Select((segment, i) => segment.SegmentCase == EnvoyMatchers.MetadataMatcher.Types.PathSegment.SegmentOneofCase.Key
            ? segment.Key
            : throw new ProxyConfigException($"{where}.path[{i}]: only key segments are defined")).ToArray();
        return new MetadataValue(metadata.Filter, keys, ValueMatch.From(metadata.Value, where + ".value"), metadata.Invert);
    }

    private static CidrRange Cidr(Envoy.Config.Core.V3.CidrRange range, string where) => CidrRange.From(range, where);

    private sealed class Always : RbacMatcher
    {
        public static readonly Always Instance = new();

        public override bool Matches(in RbacInput input) => true;
    }

    private sealed class All(RbacMatcher[] matchers) : RbacMatcher
    {
        public override bool Matches(in RbacInput input)
        {
            foreach (var matcher in matchers)
            {
                if (!matcher.Matches(input))
                {
                    return false;
                }
            }
            return true;
        }
    }

    private sealed class AnyOf(RbacMatcher[] matchers) : RbacMatcher
    {
        public override bool Matches(in RbacInput input)
        {
            foreach (var matcher in matchers)
            {
                if (matcher.Matches(input))
                {
                    return true;
                }
            }
            return false;
        }
    }

    private sealed class Not(RbacMatcher inner) : RbacMatcher
    {
        public override bool Matches(in RbacInput input) => !inner.Matches(input);
    }

    private sealed class Header(HeaderCondition condition) : RbacMatcher
    {
        public override bool Matches(in RbacInput input) => condition.Matches(input.Http.Context.Request);
    }

    /// <summary>The path without its query, after the connection manager normalized it: the path the upstream receives.</summary>
    private sealed class UrlPathMatcher(StringMatcher path) : RbacMatcher
    {
        public override bool Matches(in RbacInput input) => path.Matches(input.Http.Context.Request.Path.Value ?? "/");
    }

    private sealed class DestinationPorts(int start, int end) : RbacMatcher
    {
        public override bool Matches(in RbacInput input)
        {
            var port = input.Connection?.Metadata.DestinationPort ?? input.Http.Context.Connection.LocalPort;
            return port >= start && port < end;
        }
    }

    private sealed class ServerName(StringMatcher name) : RbacMatcher
    {
        // Envoy matches a connection without SNI as the empty name.
        public override bool Matches(in RbacInput input) => name.Matches(input.Connection?.Metadata.ServerName ?? "");
    }

    private enum AddressKind
    {
        Destination,
        DirectRemote,
        Remote,
    }

    private sealed class Address(AddressKind kind, CidrRange range) : RbacMatcher
    {
        public override bool Matches(in RbacInput input)
        {
            var address = kind switch
            {
                AddressKind.Destination => input.Connection?.Metadata.DestinationAddress ?? input.Http.Context.Connection.LocalIpAddress,
                AddressKind.DirectRemote => DirectRemote(input),
                _ => OriginalClient(input),
            };
            return address is not null && range.Contains(address);
        }

        private static IPAddress? DirectRemote(in RbacInput input) => input.Connection?.Metadata.SourceAddress ?? input.Http.Context.Connection.RemoteIpAddress;

        /// <summary>
        /// Envoy's downstream remote address with use_remote_address off and no trusted hops: the last address in
        /// x-forwarded-for when there is one, else the connection's peer.
        /// </summary>
        private static IPAddress? OriginalClient(in RbacInput input)
        {
            if (input.Stream is not { } stream)
            {
                // A connection has no headers: its remote address is its peer's (Envoy's network RBAC).
                return DirectRemote(input);
            }
            var forwarded = stream.Context.Request.Headers["x-forwarded-for"].ToString();
            if (forwarded.Length > 0)
            {
                var last = forwarded.AsSpan(forwarded.LastIndexOf(',') + 1).Trim();
                if (IPAddress.TryParse(last, out var client))
                {
                    return client;
                }
            }
            return DirectRemote(input);
        }
    }

    /// <summary>
    /// Envoy's <c>authenticated</c>: the connection's verified peer certificate. Without <c>principal_name</c> any
    /// verified peer matches; with it, a URI SAN, else a DNS SAN, else (a certificate without SANs) the subject must
    /// match. A plaintext connection, or TLS without a client certificate, never matches.
    /// </summary>
    private sealed class Authenticated(StringMatcher? name) : RbacMatcher
    {
        public override bool Matches(in RbacInput input)
        {
            if (input.Connection?.Peer is not { } peer)
            {
                return false;
            }
            if (name is null)
            {
                return true;
            }
            var (uris, dnsNames) = peer.SubjectAltNames;
            foreach (var uri in uris)
            {
                if (name.Matches(uri))
                {
                    return true;
                }
            }
            foreach (var dns in dnsNames)
            {
                if (name.Matches(dns))
                {
                    return true;
                }
            }
            return uris.Count == 0 && dnsNames.Count == 0 && name.Matches(peer.Certificate.Subject);
        }
    }

    private sealed class MetadataValue(string filter, string[] path, ValueMatch value, bool invert) : RbacMatcher
    {
        public override bool Matches(in RbacInput input) => value.Matches(input.Http.Metadata?.Get(filter, path)) != invert;
    }
}

/// <summary>A compiled Envoy <c>ValueMatcher</c> over a dynamic-metadata value (a JWT claim, say).</summary>
internal abstract class ValueMatch
{
    public abstract bool Matches(Value? value);

    public static ValueMatch From(EnvoyMatchers.ValueMatcher matcher, string where) => matcher.MatchPatternCase switch
    {
        EnvoyMatchers.ValueMatcher.MatchPatternOneofCase.NullMatch => new Kind(v => v.KindCase == Value.KindOneofCase.NullValue),
        EnvoyMatchers.ValueMatcher.MatchPatternOneofCase.DoubleMatch => Double(matcher.DoubleMatch, where + ".double_match"),
        EnvoyMatchers.ValueMatcher.MatchPatternOneofCase.StringMatch => new Text(StringMatcher.From(matcher.StringMatch, where + ".string_match")),
        EnvoyMatchers.ValueMatcher.MatchPatternOneofCase.BoolMatch => new Kind(v => v.KindCase == Value.KindOneofCase.BoolValue && v.BoolValue == matcher.BoolMatch),
        // Envoy: present_match true matches any value at the path; false matches only where there is none.
        EnvoyMatchers.ValueMatcher.MatchPatternOneofCase.PresentMatch => new Presence(matcher.PresentMatch),
        EnvoyMatchers.ValueMatcher.MatchPatternOneofCase.ListMatch when matcher.ListMatch.MatchPatternCase == EnvoyMatchers.ListMatcher.MatchPatternOneofCase.OneOf =>
            new OneOf(From(matcher.ListMatch.OneOf, where + ".list_match.one_of")),
        EnvoyMatchers.ValueMatcher.MatchPatternOneofCase.OrMatch => new Or([.. matcher.OrMatch.ValueMatchers.Select((m, i) => From(m, $"{where}.or_match[{i}]"))]),
        _ => throw new ProxyConfigException($"{where}: value matcher {matcher.MatchPatternCase} is not supported"),
    };

    private static Kind Double(EnvoyMatchers.DoubleMatcher matcher, string where) => matcher.MatchPatternCase switch
    {
        EnvoyMatchers.DoubleMatcher.MatchPatternOneofCase.Exact => new Kind(v => v.KindCase == Value.KindOneofCase.NumberValue && v.NumberValue == matcher.Exact),
        EnvoyMatchers.DoubleMatcher.MatchPatternOneofCase.Range => new Kind(v => v.KindCase == Value.KindOneofCase.NumberValue && v.NumberValue >= matcher.Range.Start && v.NumberValue < matcher.Range.End),
        _ => throw new ProxyConfigException($"{where}: a double matcher needs exact or range"),
    };

    private sealed class Kind(Func<Value, bool> test) : ValueMatch
    {
        public override bool Matches(Value? value) => value is not null && test(value);
    }

    private sealed class Text(StringMatcher matcher) : ValueMatch
    {
        public override bool Matches(Value? value) => value is { KindCase: Value.KindOneofCase.StringValue } && matcher.Matches(value.StringValue);
    }

    private sealed class Presence(bool present) : ValueMatch
    {
        public override bool Matches(Value? value) => (value is not null && value.KindCase != Value.KindOneofCase.None) == present;
    }

    private sealed class OneOf(ValueMatch element) : ValueMatch
    {
        public override bool Matches(Value? value)
        {
            if (value is not { KindCase: Value.KindOneofCase.ListValue })
            {
                return false;
            }
            foreach (var item in value.ListValue.Values)
            {
                if (element.Matches(item))
                {
                    return true;
                }
            }
            return false;
        }
    }

    private sealed class Or(ValueMatch[] matchers) : ValueMatch
    {
        public override bool Matches(Value? value)
        {
            foreach (var matcher in matchers)
            {
                if (matcher.Matches(value))
                {
                    return true;
                }
            }
            return false;
        }
    }
}
