using System.Globalization;
using System.Text;
using Bowline.Samples.Bookinfo.Reviews;
using static System.Net.WebUtility;

namespace Bowline.Samples.Bookinfo.ProductPage;

/// <summary>Renders the product page: one self-contained HTML document (inline CSS, no
/// scripts, nothing fetched), so it renders the same through any gateway.</summary>
internal static class ProductPageHtml
{
    private const int MaxStars = 5;

    public static string Render(ProductPageModel model)
    {
        var html = new StringBuilder(4096);
        html.Append(CultureInfo.InvariantCulture, $"""
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Simple Bookstore App</title>
            <style>
            {PageStyle.Css}
            </style>
            </head>
            <body>
            <header><a class="brand" href="/productpage">BookInfo Sample</a><div class="user">
            """);
        AppendUser(html, model.User);
        html.Append(CultureInfo.InvariantCulture, $"""
            </div></header>
            <main>
            <h1>{HtmlEncode(model.Product.Title)}</h1>
            <p class="summary">{model.Product.DescriptionHtml}</p>
            <div class="columns">
            <section class="details">
            <h2>Book Details</h2>

            """);
        AppendDetails(html, model);
        html.Append("""
            </section>
            <section class="reviews">
            <h2>Book Reviews</h2>

            """);
        AppendReviews(html, model);
        html.Append("""
            </section>
            </div>
            </main>
            </body>
            </html>

            """);
        return html.ToString();
    }

    private static void AppendUser(StringBuilder html, string? user)
    {
        if (user is not null)
        {
            html.Append(CultureInfo.InvariantCulture, $"""Signed in as <b>{HtmlEncode(user)}</b> &middot; <a href="/logout">Sign out</a>""");
            return;
        }

        html.Append("""
            <form method="post" action="/login"><input name="username" placeholder="User name" required><input name="password" type="password" placeholder="Password"><button type="submit">Sign in</button></form>
            """);
    }

    private static void AppendDetails(StringBuilder html, ProductPageModel model)
    {
        if (model.Details is not { } d)
        {
            html.Append(CultureInfo.InvariantCulture, $"<p class=\"error\">{HtmlEncode(model.DetailsError)}</p>\n");
            return;
        }

        html.Append("<table>\n");
        Row(html, "Author", d.Author);
        Row(html, "Year", d.Year.ToString(CultureInfo.InvariantCulture));
        Row(html, "Type", d.Type);
        Row(html, "Pages", d.Pages.ToString(CultureInfo.InvariantCulture));
        Row(html, "Publisher", d.Publisher);
        Row(html, "Language", d.Language);
        Row(html, "ISBN-10", d.Isbn10);
        Row(html, "ISBN-13", d.Isbn13);
        html.Append("</table>\n");
    }

    private static void Row(StringBuilder html, string name, string? value) =>
        html.Append(CultureInfo.InvariantCulture, $"<tr><th>{name}</th><td>{HtmlEncode(value)}</td></tr>\n");

    private static void AppendReviews(StringBuilder html, ProductPageModel model)
    {
        if (model.Reviews is not { } reviews)
        {
            html.Append(CultureInfo.InvariantCulture, $"<p class=\"error\">{HtmlEncode(model.ReviewsError)}</p>\n");
            return;
        }

        foreach (Review review in reviews.Reviews)
        {
            html.Append(CultureInfo.InvariantCulture, $"<blockquote><p>{HtmlEncode(review.Text)}</p><small>{HtmlEncode(review.Reviewer)}</small>");
            AppendRating(html, review.Rating);
            html.Append("</blockquote>\n");
        }

        // Tests read which reviews version answered from this line, e.g. "reviews-v2".
        string servedBy = reviews.Version is { Length: > 0 } version ? $"reviews-{version}" : reviews.Podname;
        html.Append(CultureInfo.InvariantCulture, $"<p class=\"served-by\">Reviews served by: <b>{HtmlEncode(servedBy)}</b>");
        if (reviews.Podname != servedBy)
        {
            html.Append(CultureInfo.InvariantCulture, $" (pod {HtmlEncode(reviews.Podname)})");
        }

        html.Append("</p>\n");
    }

    private static void AppendRating(StringBuilder html, ReviewRating? rating)
    {
        if (rating is null)
        {
            return; // reviews v1: no stars at all.
        }

        if (rating.Stars is not { } stars)
        {
            html.Append(CultureInfo.InvariantCulture, $"<p class=\"error\">{HtmlEncode(rating.Error ?? ReviewRating.Unavailable)}</p>");
            return;
        }

        stars = Math.Clamp(stars, 0, MaxStars);
        string color = IsPlainColorName(rating.Color) ? rating.Color! : "black";
        html.Append(CultureInfo.InvariantCulture,
            $"<p class=\"stars stars-{color}\" style=\"color: {color}\" title=\"{stars} of {MaxStars} stars\">{new string('★', stars)}{new string('☆', MaxStars - stars)}</p>");
    }

    /// <summary>The color goes into a style attribute, so only a bare name like "red" is trusted.</summary>
    private static bool IsPlainColorName(string? color) =>
        color is { Length: > 0 and <= 20 } && color.All(char.IsAsciiLetter);
}
