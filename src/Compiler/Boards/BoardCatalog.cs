namespace TinyTrain.Compiler.Boards;

/// <summary>
/// The boards TinyTrain knows: the profiles in boards/*.json, embedded in this assembly as boards/&lt;id&gt;.json.
/// Ordered microcontrollers first, then Linux boards, each by usable SRAM.
/// </summary>
public static class BoardCatalog
{
    internal const string ResourcePrefix = "boards/";
    private const string ResourceSuffix = ".json";

    private static readonly Lazy<IReadOnlyList<BoardProfile>> Loaded = new(LoadEmbedded);

    public static IReadOnlyList<BoardProfile> All => Loaded.Value;

    public static IReadOnlyList<string> Ids => All.Select(b => b.Id).ToArray();

    /// <summary>The profile with this id (case-insensitive); throws TinyTrainException listing the known ids.</summary>
    public static BoardProfile Get(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        return TryGet(id) ?? throw new TinyTrainException(
            $"Unknown board '{id}': known boards are {string.Join(", ", Ids)}. To add one, see boards/README.md.");
    }

    public static BoardProfile? TryGet(string id)
    {
        foreach (BoardProfile board in All)
            if (string.Equals(board.Id, id, StringComparison.OrdinalIgnoreCase))
                return board;
        return null;
    }

    /// <summary>Orders and checks a set of profiles as the catalog does: ids must be unique.</summary>
    internal static IReadOnlyList<BoardProfile> Build(IEnumerable<BoardProfile> profiles)
    {
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var list = new List<BoardProfile>();
        foreach (BoardProfile profile in profiles)
        {
            if (!seen.Add(profile.Id))
                throw new TinyTrainException($"Board id '{profile.Id}' is defined twice in boards/: ids must be unique.");
            list.Add(profile);
        }
        return list
            .OrderBy(b => b.Kind)
            .ThenBy(b => b.UsableSramBytes)
            .ThenBy(b => b.Id, StringComparer.Ordinal)
            .ToArray();
    }

    private static IReadOnlyList<BoardProfile> LoadEmbedded()
    {
        var assembly = typeof(BoardCatalog).Assembly;
        var profiles = new List<BoardProfile>();
        foreach (string resource in assembly.GetManifestResourceNames().Order(StringComparer.Ordinal))
        {
            if (!resource.StartsWith(ResourcePrefix, StringComparison.Ordinal) || !resource.EndsWith(ResourceSuffix, StringComparison.Ordinal))
                continue;
            string id = resource[ResourcePrefix.Length..^ResourceSuffix.Length];
            using Stream stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            profiles.Add(BoardProfileReader.Parse(reader.ReadToEnd(), $"{resource} (embedded in TinyTrain.Compiler)", id));
        }
        if (profiles.Count == 0)
            throw new TinyTrainException("No board profiles are embedded in TinyTrain.Compiler: rebuild it from a checkout that has boards/*.json.");
        return Build(profiles);
    }
}
