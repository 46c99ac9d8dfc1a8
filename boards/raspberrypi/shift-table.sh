#!/usr/bin/env bash
# Accuracy of the Raspberry Pi host (simulated sensor) before and after each field shift, without and with
# adaptation, mean over three owners (seeds 1-3): the README's table.
# Usage: shift-table.sh imu.ttplan [imu-tta.ttplan]
#   imu.ttplan      compiled --update bias:2 (label and gravity columns)
#   imu-tta.ttplan  compiled --update tta:norm from the same model (label-free runtime TTA columns; optional)
set -euo pipefail
cd "$(dirname "$0")/../.."
plan="$1"
tta="${2:-}"
dotnet build boards/raspberrypi -c Release -v q -nologo >/dev/null
host=boards/raspberrypi/bin/Release/net10.0/tinytrain-rpi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
modes="none:$plan labels:$plan gravity:$plan both:$plan"
header="| shift | clean (before) | shifted, no adaptation | labels only | gravity only | labels + gravity |"
rule="| --- | ---: | ---: | ---: | ---: | ---: |"
if [ -n "$tta" ]; then
  modes="$modes tta:$tta tta+gravity:$tta"
  header="$header runtime TTA (no labels) | TTA + gravity |"
  rule="$rule ---: | ---: |"
fi
echo "$header"
echo "$rule"
for shift in rotation gain tempo vibration; do
  row="| $shift@1"
  clean=""
  for mode in $modes; do
    adapt="${mode%%:*}"
    p="${mode#*:}"
    sum=0
    for seed in 1 2 3; do
      rm -f "$work"/s*
      out=$($host --simulate --plan "$p" --state "$work/s.bin" --seed $seed --stream "clean*60,$shift@1*300" --adapt "$adapt")
      last=$(echo "$out" | grep "^segment 2" | sed -E 's/.*last quarter ([0-9.]+) %.*/\1/')
      sum=$(echo "$sum + $last" | bc -l)
      if [ "$adapt" = none ]; then
        c=$(echo "$out" | grep "^segment 1" | sed -E 's/.*accuracy ([0-9.]+) %.*/\1/')
        clean="$clean $c"
      fi
    done
    mean=$(printf "%.1f" "$(echo "$sum / 3" | bc -l)")
    if [ "$adapt" = none ]; then
      cm=$(printf "%.1f" "$(echo "($(echo $clean | sed 's/ / + /g')) / 3" | bc -l)")
      row="$row | $cm %"
    fi
    row="$row | $mean %"
  done
  echo "$row |"
done
