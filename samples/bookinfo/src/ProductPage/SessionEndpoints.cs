namespace Bowline.Samples.Bookinfo.ProductPage;

/// <summary><c>POST /login</c> and <c>GET /logout</c>: set or clear the session, then go back
/// to the page the user came from, as Istio's productpage does.</summary>
internal static class SessionEndpoints
{
    private const string DefaultPage = "/productpage";

    public static async Task<IResult> LoginAsync(HttpRequest request, HttpResponse response, CancellationToken cancellationToken)
    {
        // Like Flask's request.values: the form, else the query string. The password is ignored.
        string? user = null;
        if (request.HasFormContentType)
        {
            IFormCollection form = await request.ReadFormAsync(cancellationToken);
            user = form["username"];
        }

        user ??= request.Query["username"];
        if (string.IsNullOrEmpty(user))
        {
            PageUser.SignOut(response);
        }
        else
        {
            PageUser.SignIn(response, user);
        }

        return Results.Redirect(BackTo(request));
    }

    public static IResult Logout(HttpRequest request, HttpResponse response)
    {
        PageUser.SignOut(response);
        return Results.Redirect(BackTo(request));
    }

    /// <summary>The path of the Referer, never its host: behind a gateway the host the browser
    /// used is the only right one, and an outside host would be an open redirect.</summary>
    private static string BackTo(HttpRequest request)
    {
        string? referer = request.Headers.Referer;
        if (Uri.TryCreate(referer, UriKind.Absolute, out Uri? uri))
        {
            return uri.PathAndQuery;
        }

        return referer is ['/', not '/', ..] ? referer : DefaultPage;
    }
}
