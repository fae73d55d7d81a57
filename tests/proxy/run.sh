#!/usr/bin/env bash
# Reverse-proxy suite: Enclave behind nginx and Caddy, each run from its documented
# configuration (docs/deploy/). Everything listens on 127.0.0.1; the whole run is cut off after
# 110 s. Arguments go to `node --test`, e.g. `tests/proxy/run.sh --test-name-pattern=caddy`.
# See tests/proxy/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

die() {
  echo "tests/proxy/run.sh: $*" >&2
  exit 1
}

for tool in node nginx caddy openssl; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed (Debian: apt-get install nodejs nginx-light caddy openssl)"
done
ENCLAVE_BIN="${ENCLAVE_BIN:-$PWD/target/debug/enclave}"
[ -x "$ENCLAVE_BIN" ] || die "enclave binary not found at $ENCLAVE_BIN: run 'cargo build -p enclave' first, or set ENCLAVE_BIN"
export ENCLAVE_BIN
[ -d tests/node_modules/@enclave-tests/lib ] || die "tests/node_modules is missing: run 'npm ci --prefix tests' first"

exec timeout --kill-after=10 110 node --test "$@" tests/proxy/
