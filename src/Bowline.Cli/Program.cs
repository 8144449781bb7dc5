using System.CommandLine;
using Bowline.Cli.Commands;
using Bowline.Commands;

var root = new RootCommand("Bowline: a light service mesh. Sidecars programmed over Envoy's xDS, Istio's config API, SPIFFE identities.")
{
    ControlPlaneCommand.Create(),
    ProxyCommand.Create(),
    UpCommand.Create(),
    StatusCommand.Create(),
    ProxyStatusCommand.Create(),
    WaitCommand.Create(),
};
return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
