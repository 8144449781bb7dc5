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

    /// <summary>
    /// A copy of the mesh root (the CA's <c>root-cert.pem</c>) that sidecars verify the control plane's TLS port by.
    /// A copy, not a path into <see cref="Ca"/>: that directory holds the CA's key and is the control plane's alone.
    /// </summary>
    public string ControlPlaneRoot => Path.Combine(Root, "ca-root.pem");

    /// <summary>Writes <see cref="ControlPlaneRoot"/> from the CA store (created there at the control plane's first start); returns its path.</summary>
    public string WriteControlPlaneRoot()
    {
        var source = Path.Combine(Ca, "root-cert.pem");
        if (!File.Exists(source))
        {
            throw new StartupException($"the control plane started but {source} does not exist; remove {Ca} to let it generate a new root, or put the operator's CA files there");
        }
        var temporary = ControlPlaneRoot + ".tmp";
        File.Copy(source, temporary, overwrite: true);
        File.Move(temporary, ControlPlaneRoot, overwrite: true);
        return ControlPlaneRoot;
    }

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
