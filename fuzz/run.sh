#!/usr/bin/env bash
# Builds every fuzz target with libFuzzer's coverage instrumentation on the stable toolchain
# and runs each for a bounded time (default 20 s). Usage: fuzz/run.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-20}"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps these flags off build scripts and proc macros.
triple="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --locked --bins --target "$triple"
for src in fuzz_targets/*.rs; do
  name="$(basename "$src" .rs)"
  mkdir -p "corpus/$name" "artifacts/$name"
  echo "fuzzing $name for ${secs}s"
  "target/$triple/release/$name" -max_total_time="$secs" -artifact_prefix="artifacts/$name/" "corpus/$name"
done
