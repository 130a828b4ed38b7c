# Sourced by the netbed tests that run workers across the test bed
# (scripts/netbed.sh): sets `bed` and defines netbed_up.
bed="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../scripts/netbed.sh"

# netbed_up ARGS...: `netbed.sh up ARGS`. Exits 77 with netbed's one line
# saying why when it skips (no root/ip/iptables), 1 when it fails.
netbed_up() {
  local out code
  set +e
  out=$(bash "$bed" up "$@" 2>&1); code=$?
  set -e
  if [ "$code" = 77 ]; then echo "$out"; exit 77; fi
  [ "$code" = 0 ] || { echo "FAIL: netbed up: $out"; exit 1; }
}
