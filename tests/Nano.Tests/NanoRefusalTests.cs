namespace TinyTrain.Nano.Tests;

/// <summary>Bad input to the nanoFramework executor: one clear message, and nothing learned is lost.</summary>
public class NanoRefusalTests
{
    [Fact]
    public void A_damaged_plan_is_refused_by_its_checksum()
    {
        byte[] image = NanoPlans.Image("cnn-s sparse");
        image[image.Length / 2] ^= 0x10;
        Exception e = Assert.ThrowsAny<Exception>(() => NanoAssembly.Executor(image));
        Assert.Equal("TinyTrain.Runtime.Plans.PlanException", e.GetType().FullName);
        Assert.Equal("plan: checksum mismatch: the file is damaged; recompile it", e.Message);
    }

    [Fact]
    public void A_foreign_or_truncated_file_is_refused_with_what_it_is()
    {
        Exception foreign = Assert.ThrowsAny<Exception>(() => NanoAssembly.Executor("{\"model\": \"cnn-s\"}"u8.ToArray()));
        Assert.Contains("not a TinyTrain plan", foreign.Message);

        byte[] image = NanoPlans.Image("cnn-s sparse");
        Exception truncated = Assert.ThrowsAny<Exception>(() => NanoAssembly.Executor(image[..(image.Length - 100)]));
        Assert.Equal($"plan: the file is {image.Length - 100} bytes but its header says {image.Length}; copy it again or recompile it", truncated.Message);
    }

    [Fact]
    public void A_label_outside_the_classes_changes_nothing()
    {
        dynamic nano = NanoAssembly.Executor(NanoPlans.Image("cnn-s sparse"));
        nano.SetInput(new byte[(int)nano.InputLength], 0);
        byte[] before = (byte[])((byte[])nano.Params).Clone();
        Exception e = Assert.ThrowsAny<Exception>(() => nano.TrainStep(10));
        Assert.Equal("label 10 is outside the model's classes 0..9; nothing was changed", e.Message);
        Assert.Equal(before, (byte[])nano.Params);
    }

    [Fact]
    public void Training_an_inference_plan_says_how_to_compile_one()
    {
        dynamic nano = NanoAssembly.Executor(NanoPlans.Image("cnn-s inference"));
        Assert.False((bool)nano.CanTrain);
        Exception e = Assert.ThrowsAny<Exception>(() => nano.TrainStep(0));
        Assert.Equal("plan: this plan has no trainable set; compile it with --update bias:K, sparse:... or full", e.Message);
    }
}
