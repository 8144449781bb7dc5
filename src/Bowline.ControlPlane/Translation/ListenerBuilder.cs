using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Snapshots;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.ControlPlane.Translation;

/// <summary>Builds listeners and their route configurations for each kind of proxy.</summary>
internal static class ListenerBuilder
{
    /// <summary>
    /// Explicit mode (no iptables): one outbound listener that apps use as their HTTP proxy, routing every service by
    /// <c>host:port</c> through the <c>http_proxy</c> route configuration, as Istio does for an egress listener of
    /// protocol HTTP_PROXY.
    /// </summary>
    public static void AddSidecarOutbound(ProxyNode node, ServiceIndex index, SnapshotBuilder snapshot)
    {
        if (node.OutboundPort is not { } port)
        {
            return;
        }
        var name = IstioNames.Listener(node.BindAddress, port);
        var hcm = EnvoyBuilders.Hcm($"outbound_{name}", index, node, TelemetryMode.Client, snapshot);
        hcm.Rds = new Rds { ConfigSource = EnvoyBuilders.Ads(), RouteConfigName = IstioNames.HttpProxyRoute };
        snapshot.AddListener(new Listener
        {
            Name = name,
            Address = EnvoyBuilders.SocketAddress(node.BindAddress, port),
            TrafficDirection = Envoy.Config.Core.V3.TrafficDirection.Outbound,
            FilterChains = { new FilterChain { Name = name, Filters = { EnvoyBuilders.NetworkFilter(hcm) } } },
        });

        var route = new RouteConfiguration { Name = IstioNames.HttpProxyRoute, ValidateClusters = false };
        var taken = new HashSet<string>(StringComparer.Ordinal);
        // Once per service, not per port: a service may have thousands of ports.
        var defaultPorts = new Dictionary<MeshService, int>(ReferenceEqualityComparer.Instance);
        foreach (var (service, servicePort) in HttpPorts(index))
        {
            var host = new VirtualHost { Name = $"{service.Hostname}:{servicePort.Number}" };
            if (!defaultPorts.TryGetValue(service, out var defaultPort))
            {
                defaultPorts[service] = defaultPort = DefaultPort(service);
            }
            var bare = servicePort.Number == defaultPort;
            foreach (var form in service.NameForms(node.Namespace))
            {
                AddDomain(host, taken, $"{form}:{servicePort.Number}");
                if (bare)
                {
                    AddDomain(host, taken, form);
                }
            }
            host.Routes.AddRange(RateLimitBuilder.Apply(index, service, servicePort, RouteBuilder.ForService(index, service, servicePort, node, snapshot).ToList(), snapshot));
            route.VirtualHosts.Add(host);
        }
        snapshot.AddRoute(route);
    }

    /// <summary>
    /// Explicit mode's outbound TCP: a listener on each local port the node was given for a TCP service port, forwarding
    /// by the first of the service's mesh VirtualService's <c>tcp</c> routes that matches this port and this workload
    /// (port, gateways <c>mesh</c>, sourceLabels, sourceNamespace), else to the service port's cluster, as Istio's
    /// outbound TCP listener does. A match with destinationSubnets never matches here: an explicit-mode connection
    /// has no original destination address to test.
    /// </summary>
    public static void AddSidecarOutboundTcp(ProxyNode node, ServiceIndex index, SnapshotBuilder snapshot)
    {
        foreach (var outbound in node.OutboundTcpPorts)
        {
            var name = IstioNames.Listener(node.BindAddress, outbound.ListenPort);
            Envoy.Config.Listener.V3.Filter tcpProxy;
            if (index.FindService(outbound.Host) is not { } service || service.Ports.FirstOrDefault(p => p.Number == outbound.Port && p.IsProxied) is not { } port)
            {
                snapshot.Warn($"proxy {node.Id}: outbound TCP port {outbound.ListenPort} is for {outbound.Host}:{outbound.Port}, which is not a service port of the mesh; its connections are closed ({IstioNames.BlackHoleCluster})");
                tcpProxy = TcpProxyBuilder.ForCluster(IstioNames.BlackHoleCluster, IstioNames.BlackHoleCluster, null);
            }
            else
            {
                tcpProxy = OutboundTcpRoute(node, index, service, port, snapshot);
            }
            var listener = new Listener
            {
                Name = name,
                Address = EnvoyBuilders.SocketAddress(node.BindAddress, outbound.ListenPort),
                TrafficDirection = Envoy.Config.Core.V3.TrafficDirection.Outbound,
                FilterChains = { new FilterChain { Name = $"{outbound.Host}:{outbound.Port}", Filters = { tcpProxy } } },
            };
            AccessLogBuilder.ApplyToTcp(listener, index.Config, node, TelemetryMode.Client, snapshot);
            IstioTelemetryBuilder.ApplyToTcp(listener, index.Config, node, TelemetryMode.Client);
            snapshot.AddListener(listener);
        }
    }

    private static Envoy.Config.Listener.V3.Filter OutboundTcpRoute(ProxyNode node, ServiceIndex index, MeshService service, ServicePort port, SnapshotBuilder snapshot)
    {
        if (RouteBuilder.MeshVirtualService(index, service, snapshot) is { } vs)
        {
            foreach (var route in vs.Tcp)
            {
                if (route.Matches.Any(m => m.DestinationSubnets.Count > 0))
                {
                    snapshot.Warn($"{vs.Meta} ({vs.Meta.File}): a tcp match with destinationSubnets never matches a sidecar in explicit mode (a connection to a local port has no original destination address)");
                }
                if (route.Matches.Count == 0 || route.Matches.Any(m => AppliesToSidecar(m, port.Number, node)))
                {
                    return TcpProxyBuilder.ForRoute(index, vs, route.Destinations, port.Number, snapshot);
                }
            }
            if (vs.Tls.Count > 0 && vs.Tcp.Count == 0)
            {
                snapshot.Warn($"{vs.Meta} ({vs.Meta.File}): tls routes are applied at gateways only; a sidecar's outbound TCP to {service.Hostname}:{port.Number} goes to its default cluster");
            }
        }
        var cluster = IstioNames.OutboundCluster(port.Number, null, service.Hostname);
        var rule = index.FindDestinationRule(service.Hostname);
        return TcpProxyBuilder.ForCluster(cluster, cluster, TrafficPolicy.Effective(rule?.Policy, null, port.Number));
    }

    /// <summary>A tcp route's match at a sidecar: its port, the reserved gateway <c>mesh</c>, the client's labels and namespace.</summary>
    private static bool AppliesToSidecar(L4Match match, int port, ProxyNode node) =>
        match.DestinationSubnets.Count == 0
        && (match.Port is not { } p || p == port)
        && (match.Gateways.Count == 0 || match.Gateways.Contains("mesh"))
        && ServiceIndex.Matches(node.Labels, match.SourceLabels)
        && (match.SourceNamespace is null || match.SourceNamespace == node.Namespace);

    /// <summary>
    /// Explicit mode inbound: <c>virtualInbound</c> accepts on each port the sidecar was given for a container port,
    /// with one filter chain per port forwarding to <c>inbound|port||</c>, the app on loopback. With mesh mTLS on, the
    /// TLS and HTTP inspectors run first and each port's chains follow its PeerAuthentication mode (<see cref="InboundMtls"/>).
    /// Every port's HCM enforces the AuthorizationPolicies that cover the workload (<see cref="AuthorizationBuilder"/>).
    /// </summary>
    public static void AddSidecarInbound(ProxyNode node, ServiceIndex index, SnapshotBuilder snapshot)
    {
        if (node.InboundPorts.Count == 0)
        {
            return;
        }
        var listener = new Listener
        {
            Name = IstioNames.VirtualInbound,
            Address = EnvoyBuilders.SocketAddress(node.BindAddress, node.InboundPorts[0].ListenPort),
            TrafficDirection = Envoy.Config.Core.V3.TrafficDirection.Inbound,
        };
        var security = index.Config.Security;
        EffectivePeerAuthentication? peer = null;
        if (security.MeshMtls)
        {
            // The HTTP inspector after the TLS inspector, as Istio orders them: it leaves TLS connections alone.
            listener.ListenerFilters.Add(TlsContexts.TlsInspector());
            listener.ListenerFilters.Add(TlsContexts.HttpInspector());
            peer = InboundMtls.Resolve(node, index, snapshot);
        }
        var authorization = AuthorizationBuilder.For(node, index, snapshot, node.InboundPorts.ToDictionary(p => p.ContainerPort, p => p.ListenPort));
        var jwtAuthn = JwtAuthnBuilder.ForProxy(node, index, snapshot);
        var tcpPorts = node.InboundPorts.Where(p => InboundIsTcp(node, index, p.ContainerPort)).Select(p => p.ContainerPort).ToList();
        if (tcpPorts.Count > 0 && authorization.DroppedForTcp.Count > 0)
        {
            WarnDroppedForTcp($"workload {node.Name}.{node.Namespace}", $"its TCP port {string.Join(", ", tcpPorts)}", authorization, snapshot);
        }
        foreach (var inbound in node.InboundPorts)
        {
            if (inbound != node.InboundPorts[0])
            {
                listener.AdditionalAddresses.Add(new AdditionalAddress { Address = EnvoyBuilders.SocketAddress(node.BindAddress, inbound.ListenPort) });
            }
            var cluster = IstioNames.InboundCluster(inbound.ContainerPort);
            var opaque = InboundIsTcp(node, index, inbound.ContainerPort);
            // A TCP port's bytes go to the app untouched, after the policies' network RBAC has admitted the connection.
            IReadOnlyList<Envoy.Config.Listener.V3.Filter> filters = opaque
                ? WithNetworkRbac(authorization, TcpProxyBuilder.ForCluster(cluster, cluster, null))
                : [EnvoyBuilders.NetworkFilter(InboundHcm(node, inbound, cluster, index, authorization, jwtAuthn, snapshot))];
            if (peer is not null)
            {
                listener.FilterChains.AddRange(InboundMtls.Chains(cluster, inbound.ListenPort, filters, peer.ModeFor(inbound.ContainerPort), security.TrustDomain, opaque));
                continue;
            }
            listener.FilterChains.Add(new FilterChain
            {
                Name = cluster,
                FilterChainMatch = new FilterChainMatch { DestinationPort = (uint)inbound.ListenPort },
                Filters = { filters },
            });
        }
        if (peer is not null)
        {
            // As Istio's per-port inspectors: no HTTP inspection on TCP ports, and no TLS inspection on TCP ports whose
            // mode is DISABLE (plaintext only, and an app's own TLS passes as bytes); so a server-first protocol there
            // is not kept waiting for a client byte.
            var tcpInbound = node.InboundPorts.Where(p => tcpPorts.Contains(p.ContainerPort)).ToList();
            listener.ListenerFilters[0].FilterDisabled = PortsPredicate(tcpInbound.Where(p => peer.ModeFor(p.ContainerPort) == MutualTlsMode.Disable).Select(p => p.ListenPort));
            listener.ListenerFilters[1].FilterDisabled = PortsPredicate(tcpInbound.Select(p => p.ListenPort));
        }
        AccessLogBuilder.ApplyToTcp(listener, index.Config, node, TelemetryMode.Server, snapshot);
        IstioTelemetryBuilder.ApplyToTcp(listener, index.Config, node, TelemetryMode.Server);
        snapshot.AddListener(listener);
    }

    private static void WarnDroppedForTcp(string who, string where, AuthorizationBuilder authorization, SnapshotBuilder snapshot) =>
        snapshot.Warn($"{who}: ALLOW rules {string.Join(", ", authorization.DroppedForTcp)} match HTTP attributes (hosts, methods, paths, request principals, headers, claims) or experimental.envoy.filters metadata, which a TCP connection lacks, so they admit nothing on {where}, as in Istio");

    /// <summary>Envoy's <c>filter_disabled</c> for connections to these ports; null for none.</summary>
    private static ListenerFilterChainMatchPredicate? PortsPredicate(IEnumerable<int> ports)
    {
        var rules = ports.Order().Select(p => new ListenerFilterChainMatchPredicate { DestinationPortRange = new Envoy.Type.V3.Int32Range { Start = p, End = p + 1 } }).ToList();
        return rules.Count switch
        {
            0 => null,
            1 => rules[0],
            _ => new ListenerFilterChainMatchPredicate { OrMatch = new ListenerFilterChainMatchPredicate.Types.MatchSet { Rules = { rules } } },
        };
    }

    private static HttpConnectionManager InboundHcm(ProxyNode node, InboundPort inbound, string cluster, ServiceIndex index, AuthorizationBuilder authorization, HttpFilter? jwtAuthn, SnapshotBuilder snapshot)
    {
        var hcm = EnvoyBuilders.Hcm($"inbound_0.0.0.0_{inbound.ContainerPort}", index, node, TelemetryMode.Server, snapshot);
        // Istio's inbound: the caller's certificate details appended to x-forwarded-client-cert for the app.
        hcm.ForwardClientCertDetails = HttpConnectionManager.Types.ForwardClientCertDetails.AppendForward;
        hcm.SetCurrentClientCertDetails = new HttpConnectionManager.Types.SetCurrentClientCertDetails { Subject = true, Dns = true, Uri = true };
        authorization.InsertInto(hcm);
        var host = new VirtualHost { Name = $"inbound|http|{inbound.ContainerPort}", Domains = { "*" } };
        // The services this workload serves on the port, whose RateLimits' perSource its own sidecar enforces.
        var served = index.Services.Where(s => s.Namespace == node.Namespace && s.Selector is { Count: > 0 } selector && ServiceIndex.Matches(node.Labels, selector))
            .SelectMany(s => s.Ports.Where(p => p.IsHttp && (p.TargetPort ?? p.Number) == inbound.ContainerPort).Select(p => (s, p))).ToList();
        // Istio's inbound span name: the first service the port serves, host:port/*.
        var operation = served.Count > 0 ? $"{served[0].s.Hostname}:{served[0].p.Number}/*" : $"{cluster}/*";
        List<Route> routes = [new Route
        {
            Name = "default",
            Match = new RouteMatch { Prefix = "/" },
            Route_ = new RouteAction { Cluster = cluster, Timeout = Duration.FromTimeSpan(TimeSpan.Zero) },
            Decorator = new Decorator { Operation = operation },
        }];
        host.Routes.AddRange(RateLimitBuilder.ApplyInbound(index, served, routes, snapshot));
        hcm.RouteConfig = new RouteConfiguration { Name = cluster, ValidateClusters = false, VirtualHosts = { host } };
        JwtAuthnBuilder.InsertFirst(hcm, jwtAuthn);
        return hcm;
    }

    /// <summary>A TCP chain's filters: the AuthorizationPolicies as network RBAC (Istio's TCP translation), then the tcp_proxy.</summary>
    private static List<Envoy.Config.Listener.V3.Filter> WithNetworkRbac(AuthorizationBuilder authorization, Envoy.Config.Listener.V3.Filter tcpProxy) =>
        [.. authorization.NetworkFilters.Select(f => f.Clone()), tcpProxy];

    /// <summary>
    /// An inbound port is TCP when a service selecting this workload declares its target port TCP or TLS (and none
    /// declares it HTTP): Istio picks the inbound protocol from the service port the same way.
    /// </summary>
    public static bool InboundIsTcp(ProxyNode node, ServiceIndex index, int containerPort)
    {
        var ports = index.Services.Where(s => s.Namespace == node.Namespace && s.Selector is { Count: > 0 } selector && ServiceIndex.Matches(node.Labels, selector))
            .SelectMany(s => s.Ports.Where(p => (p.TargetPort ?? p.Number) == containerPort)).ToList();
        return ports.Count > 0 && ports.All(p => p.IsTcp);
    }

    /// <summary>
    /// A gateway: one listener per Gateway server port. A port of plain HTTP servers has one chain whose routes
    /// (<c>http.&lt;port&gt;</c>) come from the VirtualServices bound to those servers; a server with
    /// <c>tls.httpsRedirect</c> answers its hosts with a redirect to https instead. A port of plain TCP servers has one
    /// chain forwarding by the first matching <c>tcp</c> route. A port of TLS servers has the TLS inspector and chains
    /// matched by SNI: an HTTPS server's terminate TLS (<see cref="GatewayTlsBuilder"/>) into its own routes
    /// <c>https.&lt;port&gt;.&lt;port name&gt;.&lt;gateway&gt;.&lt;namespace&gt;</c>, as Istio names them; a TLS
    /// server's terminate TLS into a <c>tcp</c> route; a PASSTHROUGH server's forward the untouched TLS by the
    /// <c>tls</c> routes' sniHosts; an AUTO_PASSTHROUGH server's forward to the cluster the SNI names.
    /// </summary>
    public static void AddGateway(ProxyNode node, ServiceIndex index, SnapshotBuilder snapshot)
    {
        var gateways = index.Config.Gateways.Where(g => g.Selector.Count > 0 && ServiceIndex.Matches(node.Labels, g.Selector)).ToList();
        var serverPorts = gateways.SelectMany(g => g.Servers).Select(s => s.Port).Distinct().Order().ToList();
        var authorization = AuthorizationBuilder.For(node, index, snapshot, serverPorts.ToDictionary(p => p, p => node.GatewayPorts.GetValueOrDefault(p, p)));
        var jwtAuthn = JwtAuthnBuilder.ForProxy(node, index, snapshot);
        foreach (var port in serverPorts)
        {
            var name = IstioNames.Listener("0.0.0.0", port);
            var servers = gateways.SelectMany(g => g.Servers.Where(s => s.Port == port).Select(s => (Gateway: g, Server: s))).ToList();
            // Istio's rule: one port serves plain HTTP, plain TCP or TLS (told apart by SNI), never two; the first server decides.
            var portClass = ClassOf(servers[0].Server);
            foreach (var (gateway, server) in servers.Where(s => ClassOf(s.Server) != portClass))
            {
                snapshot.Warn($"{gateway.Meta}: server on port {port} ({server.Protocol}, hosts {string.Join(", ", server.Hosts)}) is ignored: port {port} already serves {Describe(portClass)}, and a gateway port cannot serve both");
            }
            servers = servers.Where(s => ClassOf(s.Server) == portClass).ToList();
            var listener = new Listener
            {
                Name = name,
                Address = EnvoyBuilders.SocketAddress(node.BindAddress, node.GatewayPorts.GetValueOrDefault(port, port)),
                TrafficDirection = Envoy.Config.Core.V3.TrafficDirection.Outbound,
            };
            switch (portClass)
            {
                case GatewayServerKind.Http:
                    var routeName = IstioNames.GatewayRoute(port);
                    listener.FilterChains.Add(new FilterChain { Name = name, Filters = { EnvoyBuilders.NetworkFilter(GatewayHcm(node, $"outbound_{name}", routeName, index, authorization, jwtAuthn, snapshot)) } });
                    snapshot.AddRoute(GatewayRoute(routeName, port, servers, node, index, snapshot));
                    break;
                case GatewayServerKind.Tcp:
                    // Istio gives a plain TCP port one chain: the first server whose bound VirtualServices have a matching tcp route.
                    if (servers.Select(s => GatewayTcpRoute(s.Gateway, s.Server, index, snapshot)).FirstOrDefault(f => f is not null) is { } tcpProxy)
                    {
                        listener.FilterChains.Add(new FilterChain { Name = name, Filters = { WithNetworkRbac(authorization, tcpProxy) } });
                    }
                    break;
                default:
                    listener.ListenerFilters.Add(TlsContexts.TlsInspector());
                    var sni = new SniChains(listener, snapshot);
                    foreach (var (gateway, server) in servers)
                    {
                        AddTlsServer(sni, gateway, server, port, name, node, index, authorization, jwtAuthn, snapshot);
                    }
                    break;
            }
            if (authorization.DroppedForTcp.Count > 0 && listener.FilterChains.Any(c => c.Filters.Any(f => f.Name == AuthorizationBuilder.NetworkRbacFilter)))
            {
                WarnDroppedForTcp($"gateway {node.Name}.{node.Namespace}", $"its TCP and TLS port {port}", authorization, snapshot);
            }
            AccessLogBuilder.ApplyToTcp(listener, index.Config, node, TelemetryMode.Client, snapshot);
            IstioTelemetryBuilder.ApplyToTcp(listener, index.Config, node, TelemetryMode.Client);
            if (listener.FilterChains.Count == 0)
            {
                snapshot.Warn($"gateway port {port} ({string.Join(", ", servers.Select(s => s.Gateway.Meta.ToString()).Distinct())}) has no route for any connection: bind a VirtualService with {(portClass == GatewayServerKind.Tcp ? "tcp" : "tls")} routes to it; connections to the port are closed until then");
                continue;
            }
            snapshot.AddListener(listener);
        }
    }

    /// <summary>How a gateway port's servers are told apart: not at all (plain HTTP, plain TCP) or by SNI (every TLS kind).</summary>
    private static GatewayServerKind ClassOf(GatewayServer server) => server.Kind switch
    {
        GatewayServerKind.Http => GatewayServerKind.Http,
        GatewayServerKind.Tcp => GatewayServerKind.Tcp,
        _ => GatewayServerKind.Https,
    };

    private static string Describe(GatewayServerKind portClass) => portClass switch
    {
        GatewayServerKind.Http => "plain HTTP",
        GatewayServerKind.Tcp => "plain TCP",
        _ => "TLS",
    };

    /// <summary>
    /// The filter chains of a TLS port, each matched by server names. Envoy refuses two chains that match the same
    /// name, so the first server or route that claims a name keeps it, as Istio's merge does, and a later one is
    /// trimmed or dropped with a warning; one chain without names (a <c>*</c> host) catches the rest.
    /// </summary>
    private sealed class SniChains(Listener listener, SnapshotBuilder snapshot)
    {
        private readonly HashSet<(string Name, string Alpn)> _taken = [];
        private readonly HashSet<string> _anyName = new(StringComparer.Ordinal);

        /// <param name="names">Server names, lower case; empty for every name.</param>
        /// <param name="alpn">Application protocols the chain also requires (AUTO_PASSTHROUGH's mesh ALPNs), else empty.</param>
        public void Add(FilterChain chain, IReadOnlyList<string> names, IReadOnlyList<string> alpn, string what)
        {
            var alpnKey = string.Join(",", alpn);
            var free = names.Where(n => _taken.Add((n, alpnKey))).ToList();
            if ((names.Count == 0 && !_anyName.Add(alpnKey)) || (names.Count > 0 && free.Count == 0))
            {
                snapshot.Warn($"{what} is ignored: an earlier server or route on the port already serves every one of its server names");
                return;
            }
            if (free.Count < names.Count)
            {
                snapshot.Warn($"{what}: server names {string.Join(", ", names.Except(free))} are served by an earlier server or route on the port, which keeps them");
            }
            chain.FilterChainMatch ??= new FilterChainMatch();
            chain.FilterChainMatch.ServerNames.AddRange(free);
            chain.FilterChainMatch.ApplicationProtocols.AddRange(alpn);
            listener.FilterChains.Add(chain);
        }
    }

    private static void AddTlsServer(SniChains sni, Gateway gateway, GatewayServer server, int port, string listenerName, ProxyNode node, ServiceIndex index,
        AuthorizationBuilder authorization, HttpFilter? jwtAuthn, SnapshotBuilder snapshot)
    {
        var what = $"{gateway.Meta}: {server.Protocol} server on port {port} (hosts {string.Join(", ", server.Hosts)})";
        switch (server.Kind)
        {
            case GatewayServerKind.Https:
            {
                var routeName = IstioNames.GatewayHttpsRoute(port, server.PortName, gateway.Meta.Name, gateway.Meta.Namespace);
                WarnIstioMutualWithoutMtls(what, server, index, snapshot);
                var chain = new FilterChain
                {
                    Name = routeName,
                    TransportSocket = TlsContexts.Tls(GatewayTlsBuilder.Context(server.Tls!)),
                    Filters = { EnvoyBuilders.NetworkFilter(GatewayHcm(node, server.Name ?? $"outbound_{listenerName}", routeName, index, authorization, jwtAuthn, snapshot)) },
                };
                sni.Add(chain, GatewayTlsBuilder.SniHosts(server), [], what);
                snapshot.AddRoute(GatewayRoute(routeName, port, [(gateway, server)], node, index, snapshot));
                return;
            }
            case GatewayServerKind.TerminatedTcp:
            {
                WarnIstioMutualWithoutMtls(what, server, index, snapshot);
                if (GatewayTcpRoute(gateway, server, index, snapshot) is not { } tcpProxy)
                {
                    snapshot.Warn($"{what} terminates TLS, but no VirtualService bound to it has a tcp route for it; its connections are closed. Add a tcp route");
                    return;
                }
                var chain = new FilterChain
                {
                    Name = $"{listenerName}.{server.PortName}",
                    TransportSocket = TlsContexts.Tls(GatewayTlsBuilder.Context(server.Tls!)),
                    Filters = { WithNetworkRbac(authorization, tcpProxy) },
                };
                sni.Add(chain, GatewayTlsBuilder.SniHosts(server), [], what);
                return;
            }
            case GatewayServerKind.Passthrough:
                AddPassthroughRoutes(sni, gateway, server, port, what, index, authorization, snapshot);
                return;
            case GatewayServerKind.AutoPassthrough:
                // No authorization here, as in Istio: the gateway never sees the mTLS inside, the workload enforces it.
                AddAutoPassthrough(sni, server, what, node, index, snapshot);
                return;
        }
    }

    private static void WarnIstioMutualWithoutMtls(string what, GatewayServer server, ServiceIndex index, SnapshotBuilder snapshot)
    {
        if (server.Tls!.Mode == ServerTlsMode.IstioMutual && !index.Config.Security.MeshMtls)
        {
            snapshot.Warn($"{what} with tls mode ISTIO_MUTUAL uses the gateway's workload certificate, which only the control plane's CA issues (MeshMtls, which bowline up turns on); without it the chain refuses every handshake");
        }
    }

    /// <summary>The VirtualServices bound to a gateway server: bound to the gateway, with a host the server admits, in Istio's order.</summary>
    private static IEnumerable<VirtualService> BoundTo(Gateway gateway, GatewayServer server, ServiceIndex index) =>
        index.Config.VirtualServices
            .Where(vs => vs.Gateways.Any(g => RouteBuilder.Refers(g, vs.Meta.Namespace, gateway)) && vs.Hosts.Any(h => server.Hosts.Any(s => HostMatches(s, h, vs.Meta.Namespace, gateway))))
            .OrderBy(v => v.Meta.Namespace, StringComparer.Ordinal).ThenBy(v => v.Meta.Name, StringComparer.Ordinal);

    /// <summary>Istio's l4SingleMatch at a gateway: only the match's port and gateways count there.</summary>
    private static bool Matches(L4Match match, GatewayServer server, Gateway gateway, string vsNamespace) =>
        (match.Port is not { } port || port == server.Port) && (match.Gateways.Count == 0 || match.Gateways.Any(g => RouteBuilder.Refers(g, vsNamespace, gateway)));

    /// <summary>The tcp_proxy of the first tcp route, of the first bound VirtualService, that matches the server (none: no chain).</summary>
    private static Envoy.Config.Listener.V3.Filter? GatewayTcpRoute(Gateway gateway, GatewayServer server, ServiceIndex index, SnapshotBuilder snapshot)
    {
        foreach (var vs in BoundTo(gateway, server, index))
        {
            foreach (var route in vs.Tcp)
            {
                if (route.Matches.Count == 0 || route.Matches.Any(m => Matches(m, server, gateway, vs.Meta.Namespace)))
                {
                    return TcpProxyBuilder.ForRoute(index, vs, route.Destinations, server.Port, snapshot);
                }
            }
        }
        return null;
    }

    /// <summary>PASSTHROUGH: a chain per matching tls route match, selected by its sniHosts, forwarding the TLS untouched.</summary>
    private static void AddPassthroughRoutes(SniChains sni, Gateway gateway, GatewayServer server, int port, string what, ServiceIndex index, AuthorizationBuilder authorization, SnapshotBuilder snapshot)
    {
        var any = false;
        foreach (var vs in BoundTo(gateway, server, index))
        {
            for (var i = 0; i < vs.Tls.Count; i++)
            {
                foreach (var match in vs.Tls[i].Matches.Where(m => Matches(m, server, gateway, vs.Meta.Namespace)))
                {
                    var names = match.SniHosts.Select(h => h.ToLowerInvariant()).ToList();
                    var chain = new FilterChain { Name = $"{vs.Meta.Namespace}/{vs.Meta.Name}.tls[{i}]", Filters = { WithNetworkRbac(authorization, TcpProxyBuilder.ForRoute(index, vs, vs.Tls[i].Destinations, port, snapshot)) } };
                    sni.Add(chain, names.Contains("*") ? [] : names, [], $"{vs.Meta} ({vs.Meta.File}) tls route {i} on port {port}");
                    any = true;
                }
            }
        }
        if (!any)
        {
            snapshot.Warn($"{what} passes TLS through, but no VirtualService bound to it has a tls route whose match selects it; its connections are closed. Add a tls route with sniHosts");
        }
    }

    /// <summary>
    /// AUTO_PASSTHROUGH (Istio's east-west gateway): a chain per in-mesh service port and subset whose host the server
    /// admits, selected by Istio's mTLS SNI for that cluster (<c>outbound_.9080_.v1_.reviews...</c>) and only with an
    /// Istio mTLS ALPN, so only a mesh client's mTLS reaches the workload's own mTLS chain; the gateway never decrypts.
    /// </summary>
    private static void AddAutoPassthrough(SniChains sni, GatewayServer server, string what, ProxyNode node, ServiceIndex index, SnapshotBuilder snapshot)
    {
        var hosts = server.Hosts.Select(h => h.Contains('/', StringComparison.Ordinal) ? h.Split('/', 2)[1] : h).ToList();
        foreach (var service in index.Services.Where(s => !s.MeshExternal && hosts.Any(h => Config.Parsing.L4RouteParser.IsSubsetOf(s.Hostname, h))))
        {
            var rule = index.FindDestinationRule(service.Hostname);
            foreach (var port in service.Ports.Where(p => p.IsProxied))
            {
                foreach (var subset in new Subset?[] { null }.Concat(rule?.Subsets ?? []))
                {
                    // The SNI-DNAT cluster, never the ordinary one: that would wrap the client's mTLS in the gateway's own.
                    var cluster = ClusterBuilder.AddSniDnat(index, node, service, port, subset, snapshot);
                    var policy = TrafficPolicy.Effective(rule?.Policy, subset?.Policy, port.Number);
                    var chain = new FilterChain { Name = cluster, Filters = { TcpProxyBuilder.ForCluster(cluster, cluster, policy) } };
                    sni.Add(chain, [cluster], TlsContexts.IstioMtlsAlpns, what);
                }
            }
        }
    }

    private static HttpConnectionManager GatewayHcm(ProxyNode node, string statPrefix, string routeName, ServiceIndex index, AuthorizationBuilder authorization, HttpFilter? jwtAuthn, SnapshotBuilder snapshot)
    {
        var hcm = EnvoyBuilders.Hcm(statPrefix, index, node, TelemetryMode.Client, snapshot);
        authorization.InsertInto(hcm);
        hcm.UseRemoteAddress = true;
        // Istio's gateway default (gatewayTopology.forwardClientCertDetails): whatever a client sent is replaced.
        hcm.ForwardClientCertDetails = HttpConnectionManager.Types.ForwardClientCertDetails.SanitizeSet;
        hcm.SetCurrentClientCertDetails = new HttpConnectionManager.Types.SetCurrentClientCertDetails { Subject = true, Dns = true, Uri = true };
        hcm.Rds = new Rds { ConfigSource = EnvoyBuilders.Ads(), RouteConfigName = routeName };
        JwtAuthnBuilder.InsertFirst(hcm, jwtAuthn);
        return hcm;
    }

    /// <summary>The virtual hosts of the VirtualServices bound to these servers, merged per host in order; httpsRedirect replaces a host's routes.</summary>
    private static RouteConfiguration GatewayRoute(string routeName, int port, IReadOnlyList<(Gateway Gateway, GatewayServer Server)> servers, ProxyNode node, ServiceIndex index, SnapshotBuilder snapshot)
    {
        var route = new RouteConfiguration { Name = routeName, ValidateClusters = false };
        var hosts = new Dictionary<string, VirtualHost>(StringComparer.Ordinal);
        var added = new HashSet<(string, string)>();
        VirtualHost HostFor(string host)
        {
            if (!hosts.TryGetValue(host, out var virtualHost))
            {
                virtualHost = new VirtualHost { Name = $"{host}:{port}" };
                if (host == "*")
                {
                    virtualHost.Domains.Add("*");
                }
                else
                {
                    virtualHost.Domains.Add(host);
                    virtualHost.Domains.Add($"{host}:{port}");
                }
                hosts[host] = virtualHost;
                route.VirtualHosts.Add(virtualHost);
            }
            return virtualHost;
        }
        var redirected = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (gateway, server) in servers)
        {
            foreach (var vs in BoundTo(gateway, server, index))
            {
                foreach (var vsHost in vs.Hosts.Where(h => server.Hosts.Any(s => HostMatches(s, h, vs.Meta.Namespace, gateway))))
                {
                    var virtualHost = HostFor(vsHost);
                    // Istio merges the routes of every VirtualService bound to the same gateway host, in order; once each.
                    if (added.Add((vs.Meta.Key, vsHost)))
                    {
                        virtualHost.Routes.AddRange(RouteBuilder.ForGateway(index, vs, port, gateway, node, snapshot));
                    }
                    if (server.Tls?.HttpsRedirect == true)
                    {
                        redirected.Add(vsHost);
                    }
                }
            }
            if (server.Tls?.HttpsRedirect == true)
            {
                // Istio gives every host of the server a redirecting virtual host, with or without a VirtualService.
                foreach (var host in server.Hosts.Select(h => (h.Contains('/', StringComparison.Ordinal) ? h.Split('/', 2)[1] : h).ToLowerInvariant()))
                {
                    HostFor(host);
                    redirected.Add(host);
                }
            }
        }
        foreach (var host in redirected)
        {
            // Istio writes require_tls: ALL on the virtual host; on a plain-HTTP route configuration every request is
            // plaintext, so a route that redirects all of them to https is the same answer (301, same host and path).
            var virtualHost = hosts[host];
            virtualHost.Routes.Clear();
            virtualHost.Routes.Add(new Route
            {
                Name = "https_redirect",
                Match = new RouteMatch { Prefix = "/" },
                Redirect = new RedirectAction { HttpsRedirect = true, ResponseCode = RedirectAction.Types.RedirectResponseCode.MovedPermanently },
            });
        }
        return route;
    }

    /// <summary>
    /// Proxyless gRPC (gRFC A27): an API listener for every name a client may dial (<c>xds:///reviews:9080</c> asks
    /// LDS for <c>reviews:9080</c>), each with an RDS route configuration of the same name.
    /// </summary>
    public static void AddProxyless(ProxyNode node, ServiceIndex index, SnapshotBuilder snapshot)
    {
        // A name two services could claim (a ServiceEntry host equal to a Kubernetes short name) goes to the first.
        var taken = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (service, servicePort) in HttpPorts(index))
        {
            var routes = RouteBuilder.ForService(index, service, servicePort, node, snapshot).ToList();
            foreach (var form in service.NameForms(node.Namespace))
            {
                var name = $"{form}:{servicePort.Number}";
                if (!taken.Add(name))
                {
                    continue;
                }
                var hcm = new HttpConnectionManager
                {
                    StatPrefix = name,
                    Rds = new Rds { ConfigSource = EnvoyBuilders.Ads(), RouteConfigName = name },
                    // gRPC clients support the fault filter (gRFC A33) and the router; CORS is a browser concern they lack.
                    HttpFilters = { EnvoyBuilders.Fault(), EnvoyBuilders.Router() },
                };
                snapshot.AddListener(new Listener { Name = name, ApiListener = new ApiListener { ApiListener_ = Any.Pack(hcm) } });
                var host = new VirtualHost { Name = name, Domains = { name, form } };
                host.Routes.AddRange(routes.Select(r => r.Clone()));
                snapshot.AddRoute(new RouteConfiguration { Name = name, VirtualHosts = { host } });
            }
        }
    }

    private static IEnumerable<(MeshService, ServicePort)> HttpPorts(ServiceIndex index) =>
        index.Services.SelectMany(s => s.Ports.Where(p => p.IsHttp).OrderBy(p => p.Number).Select(p => (s, p)));

    /// <summary>A bare host name (no port) means the service's port 80 if it has one, else its lowest HTTP port.</summary>
    private static int DefaultPort(MeshService service)
    {
        var http = service.Ports.Where(p => p.IsHttp).Select(p => p.Number).ToList();
        return http.Contains(80) ? 80 : http.Min();
    }

    private static void AddDomain(VirtualHost host, HashSet<string> taken, string domain)
    {
        // Envoy rejects a route configuration that lists a domain twice.
        if (taken.Add(domain))
        {
            host.Domains.Add(domain);
        }
    }

    /// <summary>
    /// Whether a Gateway server host (<c>*</c>, <c>*.example.com</c>, <c>ns/host</c>) admits a VirtualService host, as
    /// Istio's pickMatchingGatewayHosts: a namespace part must name the VirtualService's namespace (<c>.</c> is the
    /// gateway's own, <c>*</c> any).
    /// </summary>
    private static bool HostMatches(string serverHost, string vsHost, string vsNamespace, Gateway gateway)
    {
        var host = serverHost;
        if (serverHost.Split('/', 2) is [var ns, var name])
        {
            var admitted = ns switch { "*" => true, "." => vsNamespace == gateway.Meta.Namespace, _ => vsNamespace == ns };
            if (!admitted)
            {
                return false;
            }
            host = name;
        }
        return host == "*" || host == vsHost || (host.StartsWith("*.", StringComparison.Ordinal) && vsHost.EndsWith(host[1..], StringComparison.Ordinal));
    }
}
