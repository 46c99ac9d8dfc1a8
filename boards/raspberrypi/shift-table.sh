#!/usr/bin/env bash
# Accuracy of the Raspberry Pi host (simulated sensor) before and after each field shift, without and with
# adaptation, mean over three owners (seeds 1-3): the README's table. Usage: shift-table.sh imu.ttplan
set -euo pipefail
cd "$(dirname "$0")/../.."
plan="$1"
dotnet build boards/raspberrypi -c Release -v q -nologo >/dev/null
host=boards/raspberrypi/bin/Release/net10.0/tinytrain-rpi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "| shift | clean (before) | shifted, no adaptation | labels only | gravity only | labels + gravity |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for shift in rotation gain tempo vibration; do
  row="| $shift@1"
  clean=""
  for adapt in none labels gravity both; do
    sum=0
    for seed in 1 2 3; do
      rm -f "$work"/s*
      out=$($host --simulate --plan "$plan" --state "$work/s.bin" --seed $seed --stream "clean*60,$shift@1*300" --adapt $adapt)
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
