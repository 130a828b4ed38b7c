#!/usr/bin/env bash
# hearth's network test bed: a "public" network with a relay host and N "home"
# networks, each behind its own NAT router, on one machine, in network
# namespaces. Addresses are in 198.18.0.0/15 (reserved for benchmarks).
#
#   netbed.sh up [--homes N] [--cap-mbit M] [--cap-home I] [--reachable I,J --ports LO:HI]
#   netbed.sh exec pub|home<I>|router<I> COMMAND...
#   netbed.sh down
#   netbed.sh status
#
# Topology (I = 1..N):
#   hb-pub       bridge hbbr0 198.18.0.1/24           the relay's host ("internet")
#   hb-r<I>      wan 198.18.0.<10+I>/24 -- hbbr0        NAT router (MASQUERADE on wan)
#                lan 198.19.<I>.1/24
#   hb-h<I>      lan 198.19.<I>.2/24, default via .1   a home node: can dial out,
#                                                     cannot be reached from outside
# --reachable I: router I forwards TCP ports --ports (default 30000:30999) to
#                its home (DNAT), so that home accepts direct connections.
# --cap-mbit M:  tc tbf caps the uplink (router wan egress) of home --cap-home
#                (default: every home) to M Mbit/s.
# Needs root, iproute2 and iptables; prints one line and exits 77 otherwise.
set -euo pipefail

PREFIX=hb
need() {
  if [ "$(id -u)" -ne 0 ]; then echo "netbed: skipped: needs root"; exit 77; fi
  for tool in ip iptables tc; do
    command -v "$tool" >/dev/null 2>&1 || { echo "netbed: skipped: '$tool' not found"; exit 77; }
  done
}

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

down() {
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${PREFIX}-" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
}

up() {
  local homes=2 cap="" capHome="" reachable="" ports="30000:30999"
  while [ $# -gt 0 ]; do
    case "$1" in
      --homes) homes=$2; shift 2 ;;
      --cap-mbit) cap=$2; shift 2 ;;
      --cap-home) capHome=$2; shift 2 ;;
      --reachable) reachable=$2; shift 2 ;;
      --ports) ports=$2; shift 2 ;;
      *) echo "netbed up: unknown option '$1'" >&2; exit 2 ;;
    esac
  done
  [[ "$homes" =~ ^[0-9]+$ ]] && [ "$homes" -ge 1 ] && [ "$homes" -le 50 ] ||
    { echo "netbed up: --homes must be 1..50, got '$homes'" >&2; exit 2; }
  down
  ip netns add "$PREFIX-pub"
  nsx "$PREFIX-pub" ip link set lo up
  nsx "$PREFIX-pub" ip link add hbbr0 type bridge
  nsx "$PREFIX-pub" ip addr add 198.18.0.1/24 dev hbbr0
  nsx "$PREFIX-pub" ip link set hbbr0 up
  for i in $(seq 1 "$homes"); do
    local r="$PREFIX-r$i" h="$PREFIX-h$i"
    ip netns add "$r"
    ip netns add "$h"
    nsx "$r" ip link set lo up
    nsx "$h" ip link set lo up
    # router wan <-> public bridge
    ip link add "hbw$i" type veth peer name "hbwp$i"
    ip link set "hbw$i" netns "$r"
    ip link set "hbwp$i" netns "$PREFIX-pub"
    nsx "$r" ip link set "hbw$i" name wan
    nsx "$r" ip addr add "198.18.0.$((10 + i))/24" dev wan
    nsx "$r" ip link set wan up
    nsx "$PREFIX-pub" ip link set "hbwp$i" master hbbr0
    nsx "$PREFIX-pub" ip link set "hbwp$i" up
    # home lan <-> router lan
    ip link add "hbl$i" type veth peer name "hblh$i"
    ip link set "hbl$i" netns "$r"
    ip link set "hblh$i" netns "$h"
    nsx "$r" ip link set "hbl$i" name lan
    nsx "$r" ip addr add "198.19.$i.1/24" dev lan
    nsx "$r" ip link set lan up
    nsx "$h" ip link set "hblh$i" name lan
    nsx "$h" ip addr add "198.19.$i.2/24" dev lan
    nsx "$h" ip link set lan up
    nsx "$h" ip route add default via "198.19.$i.1"
    # NAT
    nsx "$r" sysctl -q -w net.ipv4.ip_forward=1
    nsx "$r" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
    if [[ ",$reachable," == *",$i,"* ]]; then
      nsx "$r" iptables -t nat -A PREROUTING -i wan -p tcp --dport "$ports" \
        -j DNAT --to-destination "198.19.$i.2"
    fi
    if [ -n "$cap" ] && { [ -z "$capHome" ] || [ "$capHome" = "$i" ]; }; then
      nsx "$r" tc qdisc add dev wan root tbf rate "${cap}mbit" burst 32kbit latency 400ms
    fi
  done
  echo "netbed: up: relay host 198.18.0.1 in $PREFIX-pub; $homes home(s) 198.19.<i>.2 behind NAT" \
       "${reachable:+(reachable: $reachable, ports $ports)}${cap:+ (uplink cap ${cap} Mbit/s)}"
}

status() {
  ip netns list | grep "^${PREFIX}-" || echo "netbed: down"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  up) need; up "$@" ;;
  down) need; down; echo "netbed: down" ;;
  status) status ;;
  exec)
    need
    target=${1:?netbed exec: which host? pub, home<I> or router<I>}
    shift
    case "$target" in
      pub) ns="$PREFIX-pub" ;;
      home*) ns="$PREFIX-h${target#home}" ;;
      router*) ns="$PREFIX-r${target#router}" ;;
      *) echo "netbed exec: unknown host '$target'" >&2; exit 2 ;;
    esac
    exec ip netns exec "$ns" "$@" ;;
  -h|--help|"") sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; [ -n "$cmd" ] || exit 2 ;;
  *) echo "netbed: unknown command '$cmd' (up, exec, down, status)" >&2; exit 2 ;;
esac
