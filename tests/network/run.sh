#!/usr/bin/env bash
# Network-namespace end-to-end suite: clients on another address than the server (no 127.0.0.1)
# join, exchange media and data, with UDP blocked (ICE over TCP) and with only a TURN server
# reachable (coturn). See tests/network/README.md.
#
# Creates two network namespaces joined by a veth pair:
#   server side  10.77.0.1/24 (enclave) and 10.77.0.3/24 (coturn)
#   client side  10.77.0.2/24 (the test process: rtc-node bots and headless Chromium)
# runs `node --test tests/network/` inside the client namespace, and deletes both namespaces on
# any exit (which removes the veth pair and every nftables rule made in them). Nothing is done
# in this machine's own network namespace. Needs root. Arguments go to `node --test`, e.g.
# `tests/network/run.sh --test-name-pattern=TURN`.
set -euo pipefail
cd "$(dirname "$0")/../.."

die() {
  echo "tests/network/run.sh: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "needs root (it creates network namespaces, a veth pair and nftables rules); run it as root or with sudo"
for tool in ip nft turnserver node; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed (Debian: apt-get install iproute2 nftables coturn nodejs)"
done
ip netns list >/dev/null 2>&1 || die "'ip netns' is unavailable here (iproute2 without netns support, or no permission to create network namespaces)"

ENCLAVE_BIN="${ENCLAVE_BIN:-$PWD/target/debug/enclave}"
[ -x "$ENCLAVE_BIN" ] || die "enclave binary not found at $ENCLAVE_BIN: run 'cargo build -p enclave' first, or set ENCLAVE_BIN"
# The bench binary, whose `probe` subcommand is the str0m ICE probe (the variable keeps the name the
# tests read).
SFU_BENCH_BIN="${SFU_BENCH_BIN:-$PWD/target/debug/enclave-bench}"
[ -x "$SFU_BENCH_BIN" ] || die "enclave-bench (the ICE probe) not found at $SFU_BENCH_BIN: run 'cargo build -p enclave-bench' first, or set SFU_BENCH_BIN"
CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"
[ -x "$CHROMIUM_BIN" ] || die "Chromium not found at $CHROMIUM_BIN: 'apt-get install chromium' (or set CHROMIUM_BIN)"
[ -d tests/node_modules/@enclave-tests/lib ] || die "tests/node_modules is missing: run 'npm ci --prefix tests' first"

SRV_NS="encl-srv-$$"
CLI_NS="encl-cli-$$"
SERVER_IP=10.77.0.1
CLIENT_IP=10.77.0.2
TURN_IP=10.77.0.3
SRV_IF=veth-srv
CLI_IF=veth-cli

# Deleting a namespace only drops its name: processes still inside keep it alive. Anything still
# running in our namespaces (enclave, coturn, Chromium after a hard interrupt) was started by this
# suite; end those processes by pid before dropping the names.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for ns in "$CLI_NS" "$SRV_NS"; do
    [ -e "/run/netns/$ns" ] || continue
    local pids
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [ -n "$pids" ]; then
      echo "tests/network/run.sh: stopping processes left in $ns: $(echo "$pids" | tr '\n' ' ')" >&2
      # shellcheck disable=SC2086
      kill -TERM $pids 2>/dev/null || true
      for _ in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [ -z "$pids" ] && break
        sleep 0.3
      done
      # shellcheck disable=SC2086
      [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    fi
    ip netns del "$ns" 2>/dev/null || echo "tests/network/run.sh: could not delete namespace $ns" >&2
  done
  exit "$rc"
}
for ns in "$SRV_NS" "$CLI_NS"; do
  [ ! -e "/run/netns/$ns" ] ||
    die "network namespace $ns already exists (left by an earlier run that was killed?); remove it with 'ip netns del $ns'"
done
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for ns in "$SRV_NS" "$CLI_NS"; do
  ip netns add "$ns" ||
    die "cannot create network namespace $ns (needs CAP_SYS_ADMIN and CAP_NET_ADMIN; in a container: --privileged or those capabilities)"
done
# The veth pair is created from inside the server namespace with its peer put straight into the
# client namespace: neither end ever exists in this machine's namespace.
ip -n "$SRV_NS" link add "$SRV_IF" type veth peer name "$CLI_IF" netns "$CLI_NS" ||
  die "cannot create a veth pair between the namespaces (kernel without veth support?)"
ip netns exec "$CLI_NS" nft list ruleset >/dev/null ||
  die "nftables does not work in the client namespace (kernel without nf_tables?)"
ip -n "$SRV_NS" addr add "$SERVER_IP/24" dev "$SRV_IF"
ip -n "$SRV_NS" addr add "$TURN_IP/24" dev "$SRV_IF"
ip -n "$CLI_NS" addr add "$CLIENT_IP/24" dev "$CLI_IF"
for ns in "$SRV_NS" "$CLI_NS"; do ip -n "$ns" link set lo up; done
ip -n "$SRV_NS" link set "$SRV_IF" up
ip -n "$CLI_NS" link set "$CLI_IF" up
# Default routes as on real hosts (address discovery and WebRTC's "default local address" look at
# them); nothing leaves the two namespaces whatever the route says.
ip -n "$SRV_NS" route add default via "$CLIENT_IP"
ip -n "$CLI_NS" route add default via "$SERVER_IP"

if command -v ping >/dev/null 2>&1; then
  for ip in "$SERVER_IP" "$TURN_IP"; do
    ip netns exec "$CLI_NS" ping -c 1 -W 3 "$ip" >/dev/null ||
      die "the client namespace cannot reach $ip over the veth pair"
  done
fi
echo "== network namespaces: server $SRV_NS ($SERVER_IP, TURN $TURN_IP), client $CLI_NS ($CLIENT_IP)"

rc=0
ip netns exec "$CLI_NS" env \
  SRV_NS="$SRV_NS" CLI_NS="$CLI_NS" \
  SERVER_IP="$SERVER_IP" TURN_IP="$TURN_IP" CLIENT_IP="$CLIENT_IP" CLI_IF="$CLI_IF" \
  ENCLAVE_BIN="$ENCLAVE_BIN" CHROMIUM_BIN="$CHROMIUM_BIN" SFU_BENCH_BIN="$SFU_BENCH_BIN" \
  node --test --test-concurrency=1 "$@" tests/network/ || rc=$?
exit "$rc"
