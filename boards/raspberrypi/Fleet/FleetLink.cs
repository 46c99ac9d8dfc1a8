namespace TinyTrain.Boards.RaspberryPi.Fleet;

using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using TinyTrain.Fleet.Agent;
using TinyTrain.Fleet.Messages;
using TinyTrain.Fleet.Payload;
using TinyTrain.Fleet.Transport;
using PlanImage = TinyTrain.Runtime.Plans.Plan;

/// <summary>
/// The host's optional link to a fleet (--fleet): every N labelled adaptations, and at exit, the parameters learned
/// since the last update go out as a signed update through the fleet's <see cref="DeviceAgent"/> (outbox on disk);
/// a global adapter the agent verified is applied at a window boundary; telemetry goes out with every update. Its
/// files live in the state's fleet directory: the device key (made on first run), the agent's outbox and last
/// global, and base.bin (the values the fleet already has from this device: the last global applied plus what was
/// sent since), so a restart neither resends nor loses what was learned.
/// </summary>
public sealed class FleetLink : IDisposable
{
    public const string Task = "imu-gestures";
    public const string KeyFile = "device-key.pem";
    public const string PublicKeyFile = "device-key.pub.pem";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan RetryTimeout = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan RetainedWait = TimeSpan.FromSeconds(3);

    private readonly DeviceAgent _agent;
    private readonly EmbeddedBroker? _broker;
    private readonly TextWriter _log;
    private readonly string _basePath;
    private float[] _base;
    private bool _online;
    private readonly Dictionary<GlobalRefusal, int> _refusalsLogged = [];

    private FleetLink(DeviceAgent agent, EmbeddedBroker? broker, TextWriter log, string basePath, float[] baseValues)
    {
        _agent = agent;
        _broker = broker;
        _log = log;
        _basePath = basePath;
        _base = baseValues;
    }

    public DeviceAgent Agent => _agent;

    /// <summary>Labelled adaptations not yet sent.</summary>
    public int Pending { get; private set; }
    public int UpdatesPublished { get; private set; }

    /// <summary>The fleet directory for a state file: its name with ".fleet".</summary>
    public static string DirectoryFor(string statePath) => statePath + ".fleet";

    /// <summary>
    /// Connects (or, when the broker cannot be reached, runs on and keeps updates in the outbox). <paramref name="planParams"/>:
    /// the plan's own params (what the aggregator starts from); <paramref name="parameters"/>: the runtime's params now.
    /// </summary>
    public static FleetLink Open(HostOptions options, PlanImage plan, byte[] planParams, byte[] parameters, TextWriter log)
    {
        try
        {
            return OpenLink(options, plan, planParams, parameters, log);
        }
        catch (PlatformNotSupportedException e)
        {
            // .NET's ECDSA on Linux is OpenSSL's: a system without libssl cannot sign or verify.
            throw new TinyTrainException($"the fleet link signs and verifies with ECDSA through OpenSSL, which this system lacks ({e.Message}): install it (apt install libssl3) or run without --fleet");
        }
    }

    private static FleetLink OpenLink(HostOptions options, PlanImage plan, byte[] planParams, byte[] parameters, TextWriter log)
    {
        // Everything that can be refused is checked before anything is written.
        ECDsa aggregatorKey = LoadAggregatorKey(options.AggregatorKeyPath);
        var model = FleetModel.FromPlan(plan, Task);
        var topics = new FleetTopics(FleetTopics.CheckName("fleet id", options.FleetId), model.ModelId, model.Task);
        string deviceId = FleetTopics.CheckName("device id", options.DeviceId);
        string directory = DirectoryFor(options.StatePath);
        ECDsa key = LoadOrCreateDeviceKey(directory, log);

        string url = options.FleetUrl ?? throw new ArgumentException("no --fleet", nameof(options));
        EmbeddedBroker? broker = null;
        BrokerEndpoint endpoint;
        if (url == "embedded" || url.StartsWith("embedded:", StringComparison.Ordinal))
        {
            int port = url == "embedded" ? 1883 : int.Parse(url["embedded:".Length..], System.Globalization.CultureInfo.InvariantCulture);
            broker = EmbeddedBroker.StartAsync(port, IPAddress.Any).GetAwaiter().GetResult();
            endpoint = new BrokerEndpoint("127.0.0.1", port, false);
            log.WriteLine($"fleet: MQTT broker in this process on port {port}, all interfaces (sessions in memory): aggregators connect to mqtt://<this host>:{port}");
        }
        else
        {
            endpoint = BrokerEndpoint.Parse(url);
        }

        var agent = new DeviceAgent(deviceId, key, aggregatorKey, model, topics, endpoint, directory);
        string basePath = Path.Combine(directory, "base.bin");
        (long baseVersion, float[]? saved) = LoadBase(basePath, model.Layout.TotalCount);
        // The agent staged the last global it verified; if the state already has it, take its version without writing the params.
        if (saved is not null && agent.StagedVersion is long staged && staged <= baseVersion)
            agent.TryApplyGlobal((byte[])parameters.Clone());
        var link = new FleetLink(agent, broker, log, basePath, saved ?? model.Layout.Read(planParams));
        // A newer one it verified but had not applied when it stopped goes in now, before the first window.
        link.Poll(parameters);
        log.WriteLine($"fleet: device '{deviceId}' in fleet '{topics.Fleet}', model {model.ModelId}, task {model.Task}, {model.Layout.TotalCount} shared parameters; "
            + $"global version {agent.GlobalVersion}; broker {endpoint}");
        link._online = link.TryConnect(StartTimeout);
        if (link._online)
        {
            // The broker sends the retained global right after the subscription: take it (or refuse it) before the first window.
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (clock.Elapsed < RetainedWait && agent.StagedVersion is null && !link.AnyRefused()) Thread.Sleep(10);
            link.Poll(parameters);
        }
        return link;
    }

    private bool TryConnect(TimeSpan timeout)
    {
        try
        {
            _agent.StartAsync(timeout).GetAwaiter().GetResult();
            return true;
        }
        catch (TinyTrainException e)
        {
            _log.WriteLine($"fleet: {e.Message}; learning goes on, updates wait in the outbox ({_agent.Outbox.PendingCount} now) and go out once connected");
            return false;
        }
    }

    /// <summary>One labelled adaptation was made; publishes when <paramref name="every"/> have gathered.</summary>
    public void Learned(int every, byte[] parameters, Telemetry telemetry)
    {
        if (++Pending >= every) Publish(parameters, telemetry);
    }

    /// <summary>
    /// At a window boundary: applies a newer verified global (plus what was learned here since the last update, in one
    /// copy), and reports refused ones. True when the params changed.
    /// </summary>
    public bool Poll(byte[] parameters)
    {
        LogRefusals();
        float[] local = _agent.Model.Layout.Read(parameters);
        var candidate = (byte[])parameters.Clone();
        float[]? applied = _agent.TryApplyGlobal(candidate);
        if (applied is null) return false;
        // What was learned since the last update stays, on top of the new global, and goes out with the next update.
        var merged = new float[applied.Length];
        for (int i = 0; i < merged.Length; i++) merged[i] = applied[i] + (local[i] - _base[i]);
        _agent.Model.Layout.Write(merged, candidate);
        Buffer.BlockCopy(candidate, 0, parameters, 0, candidate.Length);
        _base = applied;
        SaveBase();
        _log.WriteLine($"fleet: applied global version {_agent.GlobalVersion} (signature, model and shapes verified)");
        return true;
    }

    private bool AnyRefused()
    {
        foreach (GlobalRefusal reason in Enum.GetValues<GlobalRefusal>())
            if (_agent.Refused(reason) > _refusalsLogged.GetValueOrDefault(reason)) return true;
        return false;
    }

    private void LogRefusals()
    {
        foreach (GlobalRefusal reason in Enum.GetValues<GlobalRefusal>())
        {
            int n = _agent.Refused(reason);
            if (n > _refusalsLogged.GetValueOrDefault(reason))
            {
                _refusalsLogged[reason] = n;
                _log.WriteLine($"fleet: refused a global adapter ({Name(reason)}); keeping global version {_agent.GlobalVersion} and this device's state, still running");
            }
        }
    }

    /// <summary>Sends what was learned since the last update (if anything) and telemetry.</summary>
    public void Publish(byte[] parameters, Telemetry telemetry)
    {
        if (!_online) _online = TryConnect(RetryTimeout);
        if (Pending > 0)
        {
            float[] now = _agent.Model.Layout.Read(parameters);
            var delta = new float[now.Length];
            for (int i = 0; i < now.Length; i++) delta[i] = now[i] - _base[i];
            var metrics = new Dictionary<string, float> { ["accuracy_estimate"] = telemetry.Accuracy, ["ood_rate"] = telemetry.OodRate };
            long acknowledgedBefore = _agent.Acknowledged;
            long sequence = _agent.PublishUpdateAsync(delta, Pending, metrics).GetAwaiter().GetResult();
            bool acknowledged = _agent.Acknowledged > acknowledgedBefore;
            // The update is in the outbox (on disk) now: from here the fleet has it, sent or not yet.
            _base = now;
            SaveBase();
            UpdatesPublished++;
            _log.WriteLine($"fleet: update {sequence} ({Pending} labels, built on global version {_agent.GlobalVersion}) "
                + (acknowledged
                    ? $"acknowledged by the broker; kept in the outbox until an aggregator's receipt covers it ({_agent.Outbox.PendingCount} waiting)"
                    : $"kept in the outbox ({_agent.Outbox.PendingCount} waiting)"));
            Pending = 0;
        }
        if (_online)
            _agent.PublishTelemetryAsync(telemetry.Accuracy, telemetry.OodRate, telemetry.SramHighWater, telemetry.Samples).GetAwaiter().GetResult();
    }

    public void Dispose()
    {
        LogRefusals();
        if (_online) _agent.FlushAsync().GetAwaiter().GetResult();
        int waiting = _agent.Outbox.PendingCount;
        _log.WriteLine($"fleet: {UpdatesPublished} updates published this run, global version {_agent.GlobalVersion}"
            + (waiting == 0 ? "" : $", {waiting} waiting in the outbox for an aggregator's receipt (sent again at the next connect)"));
        _agent.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _broker?.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    /// <summary>The device's signing key from the fleet directory, made (ECDSA P-256) on first run with its public half beside it.</summary>
    public static ECDsa LoadOrCreateDeviceKey(string directory, TextWriter log)
    {
        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, KeyFile), publicPath = Path.Combine(directory, PublicKeyFile);
        var key = FleetKeys.Create();
        if (File.Exists(path))
        {
            try
            {
                key.ImportFromPem(File.ReadAllText(path));
                return key;
            }
            catch (ArgumentException e)
            {
                throw new TinyTrainException($"device key {path} is unreadable ({e.Message}): restore it, or delete it to make a new one and register its public key with the aggregator again");
            }
        }
        WriteAtomically(publicPath, System.Text.Encoding.ASCII.GetBytes(key.ExportSubjectPublicKeyInfoPem()));
        WriteAtomically(path, System.Text.Encoding.ASCII.GetBytes(key.ExportPkcs8PrivateKeyPem()), privateFile: true);
        log.WriteLine($"fleet: made a device key {path}; register its public half {publicPath} with the fleet's aggregator");
        return key;
    }

    private static ECDsa LoadAggregatorKey(string? path)
    {
        if (path is null) throw new TinyTrainException("--fleet needs --aggregator-key FILE: the aggregator's public key (PEM), to verify global adapters");
        if (!File.Exists(path)) throw new TinyTrainException($"aggregator key {path} does not exist: copy the aggregator's public key (PEM) to the device");
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(File.ReadAllText(path));
        }
        catch (ArgumentException e)
        {
            throw new TinyTrainException($"aggregator key {path} is not an EC public key in PEM ({e.Message}): copy the aggregator's public key (-----BEGIN PUBLIC KEY-----)");
        }
        return key;
    }

    // base.bin: global version (int64), value count (int32), values (float32), all little-endian.
    private static (long Version, float[]? Values) LoadBase(string path, int count)
    {
        if (!File.Exists(path)) return (0, null);
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length != 12 + 4 * count || BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8)) != count) return (0, null);
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(12 + 4 * i));
        return (BinaryPrimitives.ReadInt64LittleEndian(bytes), values);
    }

    private void SaveBase()
    {
        var bytes = new byte[12 + 4 * _base.Length];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, _agent.GlobalVersion);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(8), _base.Length);
        for (int i = 0; i < _base.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(12 + 4 * i), _base[i]);
        WriteAtomically(_basePath, bytes);
    }

    private static void WriteAtomically(string path, byte[] bytes, bool privateFile = false)
    {
        string temp = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (privateFile && !OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(temp, options))
        {
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }

    private static string Name(GlobalRefusal reason) => reason switch
    {
        GlobalRefusal.BadSignature => "bad signature: not signed by the aggregator's key",
        GlobalRefusal.OtherModel => "for another model, adapter kind or task",
        GlobalRefusal.WrongShape => "its tensors do not fit this plan",
        _ => "malformed",
    };
}

/// <summary>What the host reports to the fleet: prequential accuracy on labelled windows, share of windows out of distribution, arena high-water.</summary>
public readonly record struct Telemetry(float Accuracy, float OodRate, int SramHighWater, int Samples);
