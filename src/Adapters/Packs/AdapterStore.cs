namespace TinyTrain.Adapters.Packs;

using TinyTrain.Runtime.Execution;

/// <summary>
/// The adapters a device keeps in its state directory: one file per task, adapters/&lt;task&gt;.ttpack,
/// plus adapters/active naming the task in use. The base model (the plan) is never written. Every
/// file is written whole to a temporary name and then renamed, so a power cut leaves the old pack.
/// </summary>
public sealed class AdapterStore
{
    public const string Folder = "adapters";
    public const string Extension = ".ttpack";
    private const string ActiveFile = "active";

    public AdapterStore(string stateDirectory)
    {
        StateDirectory = stateDirectory;
        Directory = Path.Combine(stateDirectory, Folder);
    }

    public string StateDirectory { get; }
    public string Directory { get; }

    /// <summary>Tasks stored, sorted by name.</summary>
    public IReadOnlyList<string> Tasks()
    {
        if (!System.IO.Directory.Exists(Directory)) return [];
        var tasks = new List<string>();
        foreach (string file in System.IO.Directory.GetFiles(Directory, "*" + Extension))
        {
            string task = Path.GetFileNameWithoutExtension(file);
            if (TaskNames.IsValid(task)) tasks.Add(task);
        }
        tasks.Sort(StringComparer.Ordinal);
        return tasks;
    }

    public string PathOf(string task)
    {
        if (!TaskNames.IsValid(task)) throw new TinyTrainException($"task name '{task}' is not valid ({TaskNames.Rule})");
        return Path.Combine(Directory, task + Extension);
    }

    public bool Contains(string task) => File.Exists(PathOf(task));

    public AdapterPack Load(string task)
    {
        string path = PathOf(task);
        if (!File.Exists(path))
            throw new TinyTrainException($"{StateDirectory}: no adapter for task '{task}'; tasks stored: {Describe(Tasks())}");
        return AdapterPack.Deserialize(File.ReadAllBytes(path), path);
    }

    /// <summary>Stores a pack under its task name (replacing that task's previous pack).</summary>
    public void Save(AdapterPack pack)
    {
        PackCodec.Check(pack, $"pack for task '{pack.Task}'");
        WriteAtomically(PathOf(pack.Task), pack.Serialize());
    }

    /// <summary>
    /// Reads a pack file, checks it against the plan's layout (kind, base model, shapes, damage) and
    /// stores it; a refused pack leaves the state directory as it was.
    /// </summary>
    public AdapterPack Import(string file, AdapterLayout layout)
    {
        if (!File.Exists(file)) throw new TinyTrainException($"{file}: no such file");
        AdapterPack pack = AdapterPack.Deserialize(File.ReadAllBytes(file), file);
        layout.Check(pack, file);
        Save(pack);
        return pack;
    }

    public void Export(string task, string file)
    {
        AdapterPack pack = Load(task);
        WriteAtomically(file, pack.Serialize());
    }

    /// <summary>The task in use, or null.</summary>
    public string? Active
    {
        get
        {
            string path = Path.Combine(Directory, ActiveFile);
            if (!File.Exists(path)) return null;
            string task = File.ReadAllText(path).Trim();
            return TaskNames.IsValid(task) ? task : null;
        }
    }

    /// <summary>
    /// Swaps the executor to the stored adapter of <paramref name="task"/> and records it as active.
    /// A pack that is refused leaves the executor's adapter and the active task unchanged.
    /// </summary>
    public AdapterPack Activate(string task, Executor executor, AdapterLayout layout)
    {
        AdapterPack pack = Load(task);
        layout.Apply(executor, pack, PathOf(task));
        WriteAtomically(Path.Combine(Directory, ActiveFile), System.Text.Encoding.UTF8.GetBytes(task + "\n"));
        return pack;
    }

    private void WriteAtomically(string path, byte[] bytes)
    {
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null) System.IO.Directory.CreateDirectory(folder);
        string temporary = path + ".tmp";
        File.WriteAllBytes(temporary, bytes);
        File.Move(temporary, path, overwrite: true);
    }

    private static string Describe(IReadOnlyList<string> tasks) => tasks.Count == 0 ? "none" : string.Join(", ", tasks);
}
