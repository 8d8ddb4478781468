#!/usr/bin/env bash
# Installs the Debian packages the tests need, only those missing, only as root.
# Each line: a command the tests run, and the Debian package that provides it.
set -euo pipefail

need=(
	"fusermount3 fuse3"
	"ip iproute2"
	"ss iproute2"
	"sysctl procps"
	"ping iputils-ping"
	"socat socat"
	"curl curl"
	"iperf3 iperf3"
	"diodcat diod"
	"tcpdump tcpdump"
	"tmux tmux"
	"python3 python3"
	"nsenter util-linux"
	"setpriv util-linux"
	"dnsmasq dnsmasq-base"
)

missing=()
for pair in "${need[@]}"; do
	read -r cmd pkg <<<"$pair"
	command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing ${missing[*]}; run as root to install them (tests that need them will skip)" >&2
	exit 0
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
