#!/usr/bin/env bash
# hearth keygen: writes PREFIX.key (0600) and PREFIX.pub, prints the public key,
# refuses to overwrite without --force; hearth-relay refuses a 0644 secret key.
#   keygen_test.sh HEARTH HEARTH_RELAY
set -euo pipefail
hearth=$1 relay=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

pub=$("$hearth" keygen --out "$work/relay" 2>/dev/null)
[ "${#pub}" = 40 ] || fail "printed public key '$pub' is not 40 characters"
[ "$(stat -c %a "$work/relay.key")" = 600 ] || fail "secret key mode $(stat -c %a "$work/relay.key")"
grep -qxF -- "$pub" "$work/relay.pub" || fail "relay.pub does not hold the printed key"
if "$hearth" keygen --out "$work/relay" 2>"$work/err"; then fail "overwrote without --force"; fi
grep -q "refusing to overwrite" "$work/err" || fail "no clear refusal: $(cat "$work/err")"
grep -qxF -- "$pub" "$work/relay.pub" || fail "a refused keygen changed relay.pub"
pub2=$("$hearth" keygen --out "$work/relay" --force 2>/dev/null)
[ "$pub2" != "$pub" ] || fail "--force did not write a new key"
[ "$(stat -c %a "$work/relay.key")" = 600 ] || fail "--force changed the mode"
chmod 644 "$work/relay.key"
if "$relay" --run-id r --world-size 1 --curve-secret-key "$work/relay.key" 2>"$work/err"; then
  fail "hearth-relay accepted a 0644 secret key"
fi
grep -q "0644" "$work/err" || fail "no mode in the error: $(cat "$work/err")"
echo "keygen ok"
