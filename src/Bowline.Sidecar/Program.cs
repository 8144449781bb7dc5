using System.CommandLine;
using Bowline.Commands;

// `bowline-proxy --xds ... --workload ...` is exactly `bowline proxy --xds ... --workload ...`.
var root = new RootCommand("Bowline's sidecar proxy (Native AOT build of `bowline proxy`).") { ProxyCommand.Create() };
return await root.Parse(["proxy", .. args]).InvokeAsync().ConfigureAwait(false);
