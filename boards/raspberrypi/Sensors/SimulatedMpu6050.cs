namespace TinyTrain.Boards.RaspberryPi.Sensors;

using System.Device.I2c;

/// <summary>Where a simulated sensor's readings come from: the current reading, ax ay az in g and gx gy gz in deg/s.</summary>
public interface IImuSignal
{
    /// <summary>Ticks of the sample clock so far (one per reading the host takes).</summary>
    long Tick { get; }

    void Current(Span<float> reading);
}

/// <summary>
/// An MPU-6050 on the I2C bus, in software: the part's register map (InvenSense RM-MPU-6000A-00 rev 4.2) as the
/// Iot.Device.Imu.Mpu6050 binding drives it. The host talks to it through the same I2cDevice calls as to a real part.
/// </summary>
/// <remarks>
/// Registers: writes set the register pointer (first byte) then store bytes with auto-increment; reads return bytes
/// from the pointer with auto-increment. WHO_AM_I (0x75) reads 0x68. PWR_MGMT_1 (0x6B) bit 7 resets every register
/// (PWR_MGMT_1 becomes 0x40, SLEEP) and clears itself; while SLEEP is set the data registers hold zeros.
/// ACCEL_CONFIG (0x1C) bits 4:3 select +-2/4/8/16 g and GYRO_CONFIG (0x1B) bits 4:3 +-250/500/1000/2000 deg/s: the data
/// registers ACCEL_XOUT_H..GYRO_ZOUT_L (0x3B..0x48) hold the signal's current reading at that full scale as
/// big-endian int16 (32768 = full scale, saturating), TEMP_OUT (0x41) the raw value of 25 deg C.
/// Faults for tests and --simulate: from a tick on, every transfer throws IOException (the part stops acknowledging),
/// or the data registers freeze at one reading (a stuck sensor).
/// </remarks>
public sealed class SimulatedMpu6050 : I2cDevice
{
    public const byte WhoAmI = 0x75, PowerManagement1 = 0x6B, AccelConfig = 0x1C, GyroConfig = 0x1B;
    public const byte AccelXHigh = 0x3B, TempHigh = 0x41, GyroXHigh = 0x43, LastData = 0x48;

    private readonly byte[] _registers = new byte[128];
    private readonly IImuSignal _signal;
    private readonly I2cConnectionSettings _settings;
    private readonly float[] _reading = new float[6];
    private readonly float[] _stuckReading = new float[6];
    private byte _pointer;
    private long _stuckLatchedAt = -1;

    public SimulatedMpu6050(IImuSignal signal, int busId = 1, int address = 0x68)
    {
        _signal = signal ?? throw new ArgumentNullException(nameof(signal));
        _settings = new I2cConnectionSettings(busId, address);
        ResetRegisters();
    }

    public override I2cConnectionSettings ConnectionSettings => _settings;

    /// <summary>From this tick on, for <see cref="ErrorTicks"/> ticks, every transfer fails (-1: never).</summary>
    public long ErrorFrom { get; set; } = -1;
    public long ErrorTicks { get; set; }

    /// <summary>From this tick on, for <see cref="StuckTicks"/> ticks, the data registers hold the reading of that tick (-1: never).</summary>
    public long StuckFrom { get; set; } = -1;
    public long StuckTicks { get; set; }

    /// <summary>I2C transfers so far (each Read, Write, WriteByte, ReadByte, WriteRead).</summary>
    public long Transfers { get; private set; }

    /// <summary>A register's current content (for tests).</summary>
    public byte Register(int address) => address == WhoAmI ? (byte)0x68 : _registers[address];

    public override byte ReadByte()
    {
        Transfer();
        return Next();
    }

    public override void Read(Span<byte> buffer)
    {
        Transfer();
        for (int i = 0; i < buffer.Length; i++) buffer[i] = Next();
    }

    public override void WriteByte(byte value)
    {
        Transfer();
        _pointer = (byte)(value & 0x7F);
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Transfer();
        if (buffer.Length == 0) return;
        _pointer = (byte)(buffer[0] & 0x7F);
        for (int i = 1; i < buffer.Length; i++)
        {
            Store(_pointer, buffer[i]);
            _pointer = (byte)((_pointer + 1) & 0x7F);
        }
    }

    public override void WriteRead(ReadOnlySpan<byte> writeBuffer, Span<byte> readBuffer)
    {
        Write(writeBuffer);
        Read(readBuffer);
    }

    private void Transfer()
    {
        Transfers++;
        long tick = _signal.Tick;
        if (ErrorFrom >= 0 && tick >= ErrorFrom && tick < ErrorFrom + ErrorTicks)
            throw new IOException($"I2C transfer to 0x{_settings.DeviceAddress:X2} on bus {_settings.BusId} failed: no acknowledge (simulated fault)");
    }

    private void Store(byte register, byte value)
    {
        if (register == PowerManagement1 && (value & 0x80) != 0)
        {
            ResetRegisters();
            return;
        }
        if (register == WhoAmI || (register >= AccelXHigh && register <= LastData)) return; // read-only
        _registers[register] = value;
    }

    private byte Next()
    {
        byte register = _pointer;
        _pointer = (byte)((_pointer + 1) & 0x7F);
        if (register == WhoAmI) return 0x68;
        if (register >= AccelXHigh && register <= LastData) return DataRegister(register);
        return _registers[register];
    }

    private byte DataRegister(byte register)
    {
        if ((_registers[PowerManagement1] & 0x40) != 0) return 0;
        float[] reading = CurrentReading();
        int raw;
        if (register < TempHigh)
            raw = Raw(reading[(register - AccelXHigh) / 2], 2 << ((_registers[AccelConfig] >> 3) & 3));
        else if (register < GyroXHigh)
            raw = (int)((25 - 36.53) * 340);
        else
            raw = Raw(reading[3 + (register - GyroXHigh) / 2], 250 << ((_registers[GyroConfig] >> 3) & 3));
        return (register & 1) == 1 ? (byte)(raw >> 8) : (byte)raw; // 0x3B, 0x3D, ... are the high bytes
    }

    private float[] CurrentReading()
    {
        long tick = _signal.Tick;
        if (StuckFrom >= 0 && tick >= StuckFrom && tick < StuckFrom + StuckTicks)
        {
            if (_stuckLatchedAt != StuckFrom)
            {
                _signal.Current(_stuckReading);
                _stuckLatchedAt = StuckFrom;
            }
            return _stuckReading;
        }
        _signal.Current(_reading);
        return _reading;
    }

    private static int Raw(float value, int fullScale)
    {
        double q = Math.Round(value * 32768.0 / fullScale);
        return (int)Math.Clamp(q, short.MinValue, short.MaxValue);
    }

    private void ResetRegisters()
    {
        Array.Clear(_registers);
        _registers[PowerManagement1] = 0x40;
    }
}
