using Bowline.Samples.Bookinfo.Upstreams;

namespace Bowline.Samples.Bookinfo.ProductPage;

/// <summary>The logged-in user: the <c>user</c> session cookie set by <c>POST /login</c>, else an
/// incoming <c>end-user</c> header (so a test can be one curl). productpage sends it on as
/// <c>end-user</c>, which the routing tasks match on.</summary>
internal static class PageUser
{
    private const string CookieName = "user";

    public static string? Get(HttpRequest request)
    {
        if (request.Cookies.TryGetValue(CookieName, out string? user) && user.Length > 0)
        {
            return user;
        }

        string? header = request.Headers[PropagatedHeaders.EndUser];
        return string.IsNullOrEmpty(header) ? null : header;
    }

    public static void SignIn(HttpResponse response, string user) =>
        response.Cookies.Append(CookieName, user, new CookieOptions
        {
            Path = "/",
            HttpOnly = true,
            SameSite = SameSiteMode.Lax,
        });

    public static void SignOut(HttpResponse response) =>
        response.Cookies.Delete(CookieName, new CookieOptions { Path = "/" });
}
