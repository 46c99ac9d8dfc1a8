namespace TinyTrain.Runtime.Ood;

/// <summary>
/// The decision on a board: a score below <see cref="Value"/> is out of distribution. The compiler sets the
/// value from in-distribution calibration scores so that <see cref="TruePositiveRate"/> of them (95 % by
/// convention) are kept as in-distribution.
/// </summary>
public readonly struct OodThreshold
{
    public OodThreshold(float value, float truePositiveRate)
    {
        if (float.IsNaN(value))
            throw new TinyTrainException("OOD threshold: the value is NaN; calibrate it on finite scores");
        if (!(truePositiveRate > 0f && truePositiveRate <= 1f))
            throw new TinyTrainException($"OOD threshold: true-positive rate {truePositiveRate} must lie in (0, 1]");
        Value = value;
        TruePositiveRate = truePositiveRate;
    }

    public float Value { get; }

    /// <summary>The share of in-distribution calibration scores at or above <see cref="Value"/> it was set for.</summary>
    public float TruePositiveRate { get; }

    /// <summary>True when the score is below the threshold (or NaN: a sample that cannot be scored is not trusted).</summary>
    public bool IsOutOfDistribution(float score) => !(score >= Value);
}
