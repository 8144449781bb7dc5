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
        var hcm = EnvoyBuilders.Hcm($"outbound_{name}", index.Config.Security.Paths);
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
        foreach (var inbound in node.InboundPorts)
        {
            if (inbound != node.InboundPorts[0])
            {
                listener.AdditionalAddresses.Add(new AdditionalAddress { Address = EnvoyBuilders.SocketAddress(node.BindAddress, inbound.ListenPort) });
            }
            var cluster = IstioNames.InboundCluster(inbound.ContainerPort);
            var hcm = EnvoyBuilders.Hcm($"inbound_0.0.0.0_{inbound.ContainerPort}", index.Config.Security.Paths);
            // Istio's inbound: the caller's certificate details appended to x-forwarded-client-cert for the app.
            hcm.ForwardClientCertDetails = HttpConnectionManager.Types.ForwardClientCertDetails.AppendForward;
            hcm.SetCurrentClientCertDetails = new HttpConnectionManager.Types.SetCurrentClientCertDetails { Subject = true, Dns = true, Uri = true };
            authorization.InsertInto(hcm);
            hcm.RouteConfig = new RouteConfiguration
            {
                Name = cluster,
                ValidateClusters = false,
                VirtualHosts =
                {
                    new VirtualHost
                    {
                        Name = $"inbound|http|{inbound.ContainerPort}",
                        Domains = { "*" },
                        Routes = { new Route { Name = "default", Match = new RouteMatch { Prefix = "/" }, Route_ = new RouteAction { Cluster = cluster, Timeout = Duration.FromTimeSpan(TimeSpan.Zero) } } },
                    },
                },
            };
            JwtAuthnBuilder.InsertFirst(hcm, jwtAuthn);
            if (peer is not null)
            {
                listener.FilterChains.AddRange(InboundMtls.Chains(cluster, inbound.ListenPort, hcm, peer.ModeFor(inbound.ContainerPort), security.TrustDomain));
                continue;
            }
            listener.FilterChains.Add(new FilterChain
            {
                Name = cluster,
                FilterChainMatch = new FilterChainMatch { DestinationPort = (uint)inbound.ListenPort },
                Filters = { EnvoyBuilders.NetworkFilter(hcm) },
            });
        }
        snapshot.AddListener(listener);
    }

    /// <summary>
    /// A gateway: one listener per Gateway server port. A port of plain HTTP servers has one chain whose routes
    /// (<c>http.&lt;port&gt;</c>) come from the VirtualServices bound to those servers; a server with
    /// <c>tls.httpsRedirect</c> answers its hosts with a redirect to https instead. A port of HTTPS servers has the TLS
    /// inspector and one chain per server, matched by SNI on the server's hosts, terminating TLS as the server says
    /// (<see cref="GatewayTlsBuilder"/>), with its own routes <c>https.&lt;port&gt;.&lt;port name&gt;.&lt;gateway&gt;.&lt;namespace&gt;</c>, as Istio names them.
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
            // Istio's rule: one port serves plain HTTP or TLS, never both; the first server on it decides.
            var terminates = servers[0].Server.TerminatesTls;
            foreach (var (gateway, server) in servers.Where(s => s.Server.TerminatesTls != terminates))
            {
                snapshot.Warn($"{gateway.Meta}: server on port {port} ({server.Protocol}, hosts {string.Join(", ", server.Hosts)}) is ignored: port {port} already serves {(terminates ? "HTTPS" : "plain HTTP")}, and a gateway port cannot serve both");
            }
            servers = servers.Where(s => s.Server.TerminatesTls == terminates).ToList();
            var listener = new Listener
            {
                Name = name,
                Address = EnvoyBuilders.SocketAddress(node.BindAddress, node.GatewayPorts.GetValueOrDefault(port, port)),
                TrafficDirection = Envoy.Config.Core.V3.TrafficDirection.Outbound,
            };
            if (!terminates)
            {
                var routeName = IstioNames.GatewayRoute(port);
                listener.FilterChains.Add(new FilterChain { Name = name, Filters = { EnvoyBuilders.NetworkFilter(GatewayHcm($"outbound_{name}", routeName, index, authorization, jwtAuthn)) } });
                snapshot.AddRoute(GatewayRoute(routeName, port, servers, node, index, snapshot));
                snapshot.AddListener(listener);
                continue;
            }
            listener.ListenerFilters.Add(TlsContexts.TlsInspector());
            var taken = new HashSet<string>(StringComparer.Ordinal);
            var anyHost = false;
            foreach (var (gateway, server) in servers)
            {
                var routeName = IstioNames.GatewayHttpsRoute(port, server.PortName, gateway.Meta.Name, gateway.Meta.Namespace);
                var sni = GatewayTlsBuilder.SniHosts(server);
                // Envoy refuses two chains that match the same server name; the first server keeps it, as Istio's merge does.
                var free = sni.Where(taken.Add).ToList();
                if ((sni.Count == 0 && anyHost) || (sni.Count > 0 && free.Count == 0))
                {
                    snapshot.Warn($"{gateway.Meta}: HTTPS server on port {port} (hosts {string.Join(", ", server.Hosts)}) is ignored: an earlier server on the port already serves every one of its hosts");
                    continue;
                }
                if (free.Count < sni.Count)
                {
                    snapshot.Warn($"{gateway.Meta}: HTTPS server on port {port}: hosts {string.Join(", ", sni.Except(free))} are served by an earlier server on the port, which keeps them");
                }
                anyHost |= sni.Count == 0;
                if (server.Tls!.Mode == ServerTlsMode.IstioMutual && !index.Config.Security.MeshMtls)
                {
                    snapshot.Warn($"{gateway.Meta}: HTTPS server on port {port} with tls mode ISTIO_MUTUAL uses the gateway's workload certificate, which only the control plane's CA issues (MeshMtls, which bowline up turns on); without it the chain refuses every handshake");
                }
                var chain = new FilterChain
                {
                    Name = routeName,
                    FilterChainMatch = new FilterChainMatch(),
                    TransportSocket = TlsContexts.Tls(GatewayTlsBuilder.Context(server.Tls)),
                    Filters = { EnvoyBuilders.NetworkFilter(GatewayHcm(server.Name ?? $"outbound_{name}", routeName, index, authorization, jwtAuthn)) },
                };
                chain.FilterChainMatch.ServerNames.AddRange(free);
                listener.FilterChains.Add(chain);
                snapshot.AddRoute(GatewayRoute(routeName, port, [(gateway, server)], node, index, snapshot));
            }
            snapshot.AddListener(listener);
        }
    }

    private static HttpConnectionManager GatewayHcm(string statPrefix, string routeName, ServiceIndex index, AuthorizationBuilder authorization, HttpFilter? jwtAuthn)
    {
        var hcm = EnvoyBuilders.Hcm(statPrefix, index.Config.Security.Paths);
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
            foreach (var vs in index.Config.VirtualServices.OrderBy(v => v.Meta.Namespace, StringComparer.Ordinal).ThenBy(v => v.Meta.Name, StringComparer.Ordinal))
            {
                if (!vs.Gateways.Any(g => RouteBuilder.Refers(g, vs.Meta.Namespace, gateway)))
                {
                    continue;
                }
                foreach (var vsHost in vs.Hosts.Where(h => server.Hosts.Any(s => HostMatches(s, h))))
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

    /// <summary>Whether a Gateway server host (<c>*</c>, <c>*.example.com</c>, <c>ns/host</c>) admits a VirtualService host.</summary>
    private static bool HostMatches(string serverHost, string vsHost)
    {
        var host = serverHost.Contains('/', StringComparison.Ordinal) ? serverHost.Split('/', 2)[1] : serverHost;
        return host == "*" || host == vsHost || (host.StartsWith("*.", StringComparison.Ordinal) && vsHost.EndsWith(host[1..], StringComparison.Ordinal));
    }
}
