using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Runtime.Loader;

namespace TinyTrain.Nano.Tests;

/// <summary>
/// The assembly boards/nanoframework builds against nanoFramework's mscorlib, loaded into this (desktop) runtime
/// by path, in its own load context: its reference to mscorlib resolves to the desktop's mscorlib facade, so
/// its types are called through reflection (<c>dynamic</c>), not compiled against.
/// </summary>
internal static class NanoAssembly
{
    public const string FileName = "TinyTrain.Nano.dll";

    private static readonly Lazy<Assembly> Loaded = new(() =>
        new AssemblyLoadContext("nanoFramework build").LoadFromAssemblyPath(Path));

    public static string Path => System.IO.Path.Combine(AppContext.BaseDirectory, FileName);

    public static Assembly Assembly => Loaded.Value;

    /// <summary>A NanoExecutor bound to <paramref name="image"/> (the nano build's own type).</summary>
    public static dynamic Executor(byte[] image)
    {
        Type type = Assembly.GetType("TinyTrain.Nano.NanoExecutor", throwOnError: true)!;
        try
        {
            return Activator.CreateInstance(type, [image])!;
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw e.InnerException;
        }
    }

    /// <summary>A delegate of type <typeparamref name="T"/> bound to the public instance method <paramref name="method"/> of <paramref name="target"/>.</summary>
    public static T Bind<T>(object target, string method) where T : Delegate
    {
        return (T)Delegate.CreateDelegate(typeof(T), target, target.GetType().GetMethod(method)!);
    }

    /// <summary>The assemblies the nano build references, by name and version, read from its metadata.</summary>
    public static List<(string Name, Version Version)> References()
    {
        using var stream = File.OpenRead(Path);
        using var pe = new PEReader(stream);
        MetadataReader md = pe.GetMetadataReader();
        var list = new List<(string, Version)>();
        foreach (AssemblyReferenceHandle h in md.AssemblyReferences)
        {
            AssemblyReference r = md.GetAssemblyReference(h);
            list.Add((md.GetString(r.Name), r.Version));
        }
        return list;
    }
}
