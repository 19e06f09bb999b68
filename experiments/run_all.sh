#!/usr/bin/env bash
# Runs every experiment and writes experiments/RESULTS.md.
#   ONLY="targets low_bits"  reruns just those scripts and reuses the other tables from
#                            experiments/results/ (as left by an earlier run).
source "$(dirname "$0")/common.sh"
ALL="targets observers noise_calibration ema_alpha fusion_partial low_bits size_speed debug_dfq"
for s in ${ONLY:-$ALL}; do
  bash "$ROOT/experiments/$s.sh" >/dev/null
done
{
  echo "# Experiment results"
  echo
  echo "Made by \`bash experiments/run_all.sh\` (LIMIT=$LIMIT, THREADS=$THREADS; table 0 always uses"
  echo "all 10,000 test images) on $(date -u +%F)."
  echo
  for s in $ALL; do
    [ -f "$RESULTS/$s.md" ] && { cat "$RESULTS/$s.md"; echo; }
  done
} > "$ROOT/experiments/RESULTS.md"
echo "wrote experiments/RESULTS.md"
