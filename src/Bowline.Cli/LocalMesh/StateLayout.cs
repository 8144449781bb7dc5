namespace Bowline.Cli.LocalMesh;

/// <summary>The state directory of one <c>bowline up</c>: <c>logs/</c>, <c>registry/</c>, <c>build/</c> and <c>status.json</c>.</summary>
internal sealed record StateLayout(string Root)
{
    public string Logs => Path.Combine(Root, "logs");

    /// <summary>The file-backed registry: one WorkloadEntry per running workload, watched by the control plane.</summary>
    public string Registry => Path.Combine(Root, "registry");

    public string Build => Path.Combine(Root, "build");

    /// <summary>The mesh CA's root, key and bootstrap-token hashes (created 0700 by the CA).</summary>
    public string Ca => Path.Combine(Root, "ca");

    /// <summary>Each proxy's bootstrap token, 0600, read by that proxy only.</summary>
    public string Tokens => Path.Combine(Root, "tokens");

    /// <summary>
    /// Issues <paramref name="serviceAccount"/>'s bootstrap token into the CA's store and writes it where only the
    /// proxy it is for is told to look; returns the file. This is the embedded default's stand-in for a Kubernetes
    /// service-account token: the one secret a workload proves its identity with.
    /// </summary>
    public string IssueToken(string id, string ns, string serviceAccount)
    {
        var token = Bowline.Ca.Authentication.BootstrapTokenStore.Open(Ca, TimeProvider.System).Issue(new Bowline.Ca.WorkloadIdentity(ns, serviceAccount));
        if (!OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(Tokens, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        else
        {
            Directory.CreateDirectory(Tokens);
        }
        var path = Path.Combine(Tokens, $"{id}.token");
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using (var file = new StreamWriter(path, System.Text.Encoding.ASCII, options))
        {
            file.Write(token);
        }
        return path;
    }

    public string StatusFile => Path.Combine(Root, "status.json");

    public string LogFile(string name) => Path.Combine(Logs, name);

    public void Create()
    {
        Directory.CreateDirectory(Logs);
        Directory.CreateDirectory(Registry);
        Directory.CreateDirectory(Build);
    }
}
