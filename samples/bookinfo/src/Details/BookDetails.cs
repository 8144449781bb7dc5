using System.Text.Json.Serialization;

namespace Bowline.Samples.Bookinfo.Details;

/// <summary>The body of <c>GET /details/{id}</c>, field for field as Istio's details service
/// writes it.</summary>
internal sealed record BookDetails(
    int Id,
    string Author,
    int Year,
    string Type,
    int Pages,
    string Publisher,
    string Language,
    [property: JsonPropertyName("ISBN-10")] string Isbn10,
    [property: JsonPropertyName("ISBN-13")] string Isbn13)
{
    /// <summary>Istio's details v1 serves the same book for every id.</summary>
    public static BookDetails ForProduct(int id) => new(
        id,
        Author: "William Shakespeare",
        Year: 1595,
        Type: "paperback",
        Pages: 200,
        Publisher: "PublisherA",
        Language: "English",
        Isbn10: "1234567890",
        Isbn13: "123-1234567890");
}
