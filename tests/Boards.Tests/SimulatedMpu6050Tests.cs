namespace TinyTrain.Boards.Tests;

using System.Numerics;
using Iot.Device.Imu;
using TinyTrain.Boards.RaspberryPi.Sensors;

public class SimulatedMpu6050Tests
{
    private sealed class FixedSignal(params float[] reading) : IImuSignal
    {
        public long Tick { get; set; }

        public void Current(Span<float> destination) => reading.CopyTo(destination);
    }

    [Fact]
    public void RegisterMap_FollowsTheDatasheet()
    {
        var sensor = new SimulatedMpu6050(new FixedSignal(0.5f, -0.25f, 1f, 100f, -50f, 0f));
        Span<byte> one = stackalloc byte[1];

        sensor.WriteByte(SimulatedMpu6050.WhoAmI);
        Assert.Equal(0x68, sensor.ReadByte());
        // After power-on the part sleeps (PWR_MGMT_1 = 0x40) and the data registers read 0.
        Assert.Equal(0x40, sensor.Register(SimulatedMpu6050.PowerManagement1));
        var data = new byte[14];
        sensor.WriteRead([SimulatedMpu6050.AccelXHigh], data);
        Assert.All(data, b => Assert.Equal(0, b));

        sensor.Write([SimulatedMpu6050.PowerManagement1, 0x01]); // wake, PLL clock
        // +-2 g (AFS_SEL 0): 16384 LSB/g, big-endian high byte first; 0.5 g = 8192 = 0x2000.
        sensor.WriteRead([SimulatedMpu6050.AccelXHigh], data);
        Assert.Equal(0x20, data[0]);
        Assert.Equal(0x00, data[1]);
        Assert.Equal(-4096, (short)(data[2] << 8 | data[3]));
        Assert.Equal(16384, (short)(data[4] << 8 | data[5]));
        // +-250 deg/s (FS_SEL 0): 131.072 LSB per deg/s; 100 deg/s = 13107.
        Assert.Equal(13107, (short)(data[8] << 8 | data[9]));
        Assert.Equal(-6554, (short)(data[10] << 8 | data[11]));

        // +-4 g (AFS_SEL 1) halves the counts; writes auto-increment (0x1B GYRO_CONFIG, then 0x1C ACCEL_CONFIG).
        sensor.Write([SimulatedMpu6050.GyroConfig, 1 << 3, 1 << 3]);
        Assert.Equal(1 << 3, sensor.Register(SimulatedMpu6050.AccelConfig));
        sensor.WriteRead([SimulatedMpu6050.AccelXHigh], data);
        Assert.Equal(4096, (short)(data[0] << 8 | data[1]));
        Assert.Equal(6554, (short)(data[8] << 8 | data[9]));

        // Data registers are read-only; a reset (PWR_MGMT_1 bit 7) restores every default.
        sensor.Write([SimulatedMpu6050.AccelXHigh, 0x7F]);
        sensor.Write([SimulatedMpu6050.PowerManagement1, 0x80]);
        Assert.Equal(0x40, sensor.Register(SimulatedMpu6050.PowerManagement1));
        Assert.Equal(0, sensor.Register(SimulatedMpu6050.AccelConfig));
    }

    [Fact]
    public void TheIotBinding_ReadsTheSignalThroughTheRegisterMap()
    {
        var signal = new FixedSignal(0.5f, -0.25f, 1f, 100f, -50f, 12.5f);
        using var imu = new Mpu6050(new SimulatedMpu6050(signal));
        imu.AccelerometerRange = AccelerometerRange.Range04G;
        imu.GyroscopeRange = GyroscopeRange.Range0500Dps;
        imu.SampleRateDivider = 0;

        Vector3 a = imu.GetAccelerometer() / 9.807f; // the binding reports m/s^2
        Vector3 g = imu.GetGyroscopeReading();

        Assert.Equal(0.5f, a.X, 3);
        Assert.Equal(-0.25f, a.Y, 3);
        Assert.Equal(1f, a.Z, 3);
        Assert.Equal(100f, g.X, 1);
        Assert.Equal(-50f, g.Y, 1);
        Assert.Equal(12.5f, g.Z, 1);
    }

    [Fact]
    public void Faults_FailTransfersOrFreezeTheData_ForTheirTicks()
    {
        var signal = new FixedSignal(0.5f, 0, 1, 0, 0, 0);
        var sensor = new SimulatedMpu6050(signal) { ErrorFrom = 10, ErrorTicks = 2 };
        sensor.Write([SimulatedMpu6050.PowerManagement1, 0x01]);
        signal.Tick = 10;
        IOException e = Assert.Throws<IOException>(() => sensor.ReadByte());
        Assert.Contains("no acknowledge", e.Message);
        signal.Tick = 12;
        sensor.WriteByte(SimulatedMpu6050.WhoAmI);
        Assert.Equal(0x68, sensor.ReadByte());
    }
}
