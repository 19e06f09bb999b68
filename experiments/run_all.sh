#!/usr/bin/env bash
# Runs every experiment and writes experiments/RESULTS.md.
source "$(dirname "$0")/common.sh"
for s in observers noise_calibration ema_alpha fusion_partial low_bits size_speed; do
  bash "$ROOT/experiments/$s.sh" >/dev/null
done
{
  echo "# Experiment results"
  echo
  echo "Made by \`bash experiments/run_all.sh\` (LIMIT=$LIMIT, THREADS=$THREADS) on $(date -u +%F)."
  echo
  for s in observers noise_calibration ema_alpha fusion_partial low_bits size_speed; do
    cat "$RESULTS/$s.md"; echo
  done
} > "$ROOT/experiments/RESULTS.md"
echo "wrote experiments/RESULTS.md"
