namespace TinyTrain.Boards.RaspberryPi.Gpio;

using System.Device.Gpio;

/// <summary>
/// A GPIO driver in software, for --simulate and tests: input pins read what <see cref="InputLevel"/> says
/// (the simulated person pressing the button), output pins remember what the host wrote (the LED).
/// </summary>
public sealed class SimulatedGpioDriver : GpioDriver
{
    private readonly Dictionary<int, PinMode> _modes = new();
    private readonly Dictionary<int, PinValue> _outputs = new();

    /// <param name="inputLevel">The level an input pin reads now.</param>
    public SimulatedGpioDriver(Func<int, PinValue> inputLevel) => InputLevel = inputLevel;

    public Func<int, PinValue> InputLevel { get; }

    /// <summary>Writes to each output pin so far (for tests: the LED was switched on and off).</summary>
    public int Writes { get; private set; }

    /// <summary>The level last written to an output pin (Low when never written).</summary>
    public PinValue Output(int pin) => _outputs.TryGetValue(pin, out PinValue v) ? v : PinValue.Low;

    protected override int PinCount => 28;

    protected override void OpenPin(int pinNumber) => _modes[pinNumber] = PinMode.Input;

    protected override void ClosePin(int pinNumber) => _modes.Remove(pinNumber);

    protected override void SetPinMode(int pinNumber, PinMode mode) => _modes[pinNumber] = mode;

    protected override PinMode GetPinMode(int pinNumber) => _modes.TryGetValue(pinNumber, out PinMode m) ? m : PinMode.Input;

    protected override bool IsPinModeSupported(int pinNumber, PinMode mode) => mode is PinMode.Input or PinMode.InputPullUp or PinMode.Output;

    protected override PinValue Read(int pinNumber) =>
        GetPinMode(pinNumber) == PinMode.Output ? Output(pinNumber) : InputLevel(pinNumber);

    protected override void Write(int pinNumber, PinValue value)
    {
        _outputs[pinNumber] = value;
        Writes++;
    }

    protected override WaitForEventResult WaitForEvent(int pinNumber, PinEventTypes eventTypes, CancellationToken cancellationToken) =>
        throw new NotSupportedException("the host polls its pins; the simulated driver has no events");

    protected override void AddCallbackForPinValueChangedEvent(int pinNumber, PinEventTypes eventTypes, PinChangeEventHandler callback) =>
        throw new NotSupportedException("the host polls its pins; the simulated driver has no events");

    protected override void RemoveCallbackForPinValueChangedEvent(int pinNumber, PinChangeEventHandler callback) =>
        throw new NotSupportedException("the host polls its pins; the simulated driver has no events");
}
