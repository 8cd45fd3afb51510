#!/bin/sh
# Rebuild round 3's combined report from the experiment folders: copy each task's small result
# files (plan, its hash, steps, attempts, commands, summary, per-run results with dev
# predictions; no weights, no datasets) here, then combine them with `tinyaug experiment report`.
# Usage, from the repository root: sh docs/experiments/round3/report.sh RUNS_DIR
# (RUNS_DIR holds one `tinyaug experiment ablation --out` folder per task: sst2/, cola/, ...)
set -eu
runs=${1:?give the folder that holds the experiments (RUNS_DIR/sst2, RUNS_DIR/cola, ...)}
here=$(dirname "$0")
done_tasks=""
for experiment in "$runs"/*/; do
    task=$(basename "$experiment")
    [ -f "$experiment/plan.json" ] || continue
    mkdir -p "$here/$task"
    for name in plan.json plan.sha256.json steps.json attempts.json commands.sh summary.json summary.md summary.png; do
        [ -f "$experiment/$name" ] && cp "$experiment/$name" "$here/$task/"
    done
    (cd "$experiment" && find teacher runs student-init -maxdepth 2 \( -name '*_results.json' -o -name 'student_init.json' \) \
        2>/dev/null) | while read -r file; do
        mkdir -p "$here/$task/$(dirname "$file")"
        cp "$experiment/$file" "$here/$task/$file"
    done
    [ -f "$experiment/summary.json" ] && done_tasks="$done_tasks $here/$task"
done
[ -n "$done_tasks" ] || { echo "no finished experiment (summary.json) under $runs" >&2; exit 1; }
# shellcheck disable=SC2086
tinyaug experiment report $done_tasks --markdown "$here/report.md" --plot "$here/report.png"
