using Bowline.Samples.Bookinfo.Hosting;

// One executable, four services: `bookinfo productpage|details|reviews|ratings`, so that a
// workload is just a role argument and `bowline up` builds a single project.
if (args.Length == 0 || Roles.Find(args[0]) is not { } role)
{
    Console.Error.WriteLine(Roles.Usage);
    return 2;
}

try
{
    await RoleHost.RunAsync(role, args[1..]);
    return 0;
}
catch (StartupException e)
{
    Console.Error.WriteLine($"bookinfo {role.Name}: {e.Message}");
    return 2;
}
