#!/usr/bin/env bash
# Runs every fuzz target in turn and prints a table of what each did.
#
#   fuzz/run-all.sh time SECONDS     each target for SECONDS (CI: 10)
#   fuzz/run-all.sh runs N           each target for N executions (FUZZING.md: 10,000,000);
#                                    FUZZ_MAX_SECS caps each target's time as well
#   fuzz/run-all.sh ... TARGET...    only these targets
#
# The committed seeds (fuzz/corpus/<target>) are read, never written: new inputs go to a
# work corpus under $FUZZ_WORK (default: a temporary directory). Scroll files are written
# under TMPDIR, which defaults to /dev/shm so that their fsyncs cost nothing. A crash stops
# the run with libFuzzer's report; its input lands in fuzz/artifacts/<target>/ (move it to
# fuzz/regressions/<target>/ with the fix).
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:?time SECONDS | runs N}"
amount="${2:?a number}"
shift 2
case "$mode" in
  time) limit=(-max_total_time="$amount") ;;
  runs) limit=(-runs="$amount")
        [ -n "${FUZZ_MAX_SECS:-}" ] && limit+=(-max_total_time="$FUZZ_MAX_SECS") ;;
  *) echo "the first argument is 'time' or 'runs', not '$mode'" >&2; exit 2 ;;
esac
targets=("$@")
[ ${#targets[@]} -eq 0 ] && mapfile -t targets < <(cargo +nightly fuzz list)
work="${FUZZ_WORK:-$(mktemp -d)}"
[ -d /dev/shm ] && export TMPDIR="${TMPDIR:-/dev/shm}"

# No separate `cargo fuzz build`: `fuzz run` builds with its own profile settings, so a
# build made by `fuzz build` would be made again.
printf '| target | executions | per second | seconds | new inputs | peak RSS MB |\n|---|---|---|---|---|---|\n'
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  log="$work/$t.log"
  start=$(date +%s)
  # -detect_leaks=0: LeakSanitizer reports the thread-local state of the threads that
  # Scroll::open spawns and joins (std's channel context) as a leak on the first input;
  # AddressSanitizer's memory errors are still caught.
  if ! cargo +nightly fuzz run "$t" "$work/$t" "fuzz/corpus/$t" -- "${limit[@]}" \
      -rss_limit_mb=2048 -detect_leaks=0 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "target $t FAILED (log: $log)" >&2
    exit 1
  fi
  secs=$(( $(date +%s) - start ))
  stat() { grep -o "stat::$1: *[0-9]*" "$log" | grep -o '[0-9]*$' | tail -n1; }
  corpus=$(find "$work/$t" -type f | wc -l)
  printf '| %s | %s | %s | %s | %s | %s |\n' "$t" "$(stat number_of_executed_units)" \
    "$(stat average_exec_per_sec)" "$secs" "$corpus" "$(stat peak_rss_mb)"
done
