#!/usr/bin/env bash
# The Raspberry Pi host as a genuine arm64 binary under QEMU user-mode emulation (called by .ci/run):
# installs QEMU and the arm64 C runtime from Debian when missing, trains and compiles the IMU plan on this
# machine, publishes the host for linux-arm64, then runs it under qemu-aarch64-static: --selftest (fast kernels,
# AdvSimd there, against the reference bit for bit), and --simulate with a rotation shift the host is not told
# about and an I2C fault mid-stream; it must recover to 80 % over the last quarter and exit cleanly.
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$SECONDS

if ! command -v qemu-aarch64-static >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] \
   || [ ! -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross >/dev/null
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
dotnet build src/Cli -c Release -v q -nologo >/dev/null
tinytrain=src/Cli/bin/Release/net10.0/tinytrain
$tinytrain pretrain --model imu-cnn --data imu-gestures --epochs 6 -o "$work/imu.onnx" | tail -1
$tinytrain compile "$work/imu.onnx" --update bias:2 --calib imu-gestures --board raspberry-pi-zero-2w -o "$work/imu.ttplan" | tail -1

dotnet publish boards/raspberrypi -c Release -r linux-arm64 --self-contained -v q -nologo -o "$work/arm64" >/dev/null
# ELF e_machine (offset 18, little-endian) 0xB7 = AArch64.
[ "$(od -An -tx1 -j18 -N2 "$work/arm64/tinytrain-rpi" | tr -d ' \n')" = "b700" ] \
  || { echo "error: the published tinytrain-rpi is not an arm64 ELF binary"; exit 1; }

export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1
qemu="qemu-aarch64-static -L /usr/aarch64-linux-gnu"
t0=$SECONDS
$qemu "$work/arm64/tinytrain-rpi" --selftest --plan "$work/imu.ttplan"
$qemu "$work/arm64/tinytrain-rpi" --simulate --plan "$work/imu.ttplan" --state "$work/state.bin" \
  --stream clean*40,rotation@1*160 --i2c-error-at 6400:96 --require-recovery 0.8
echo "arm64 under QEMU: $((SECONDS - t0)) s; whole step $((SECONDS - start)) s"
