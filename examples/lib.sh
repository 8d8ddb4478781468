# lib.sh: what the example experiments share (sourced, not run). It starts
# `sockfs serve --mount` on a TUN device of its own, moves the device's
# kernel side into a network namespace it creates, and undoes all of it on
# exit or failure: the processes it started (by PID), the mount, the
# namespace (which takes the TUN device with it) and the mount directory.
#
# The caller sets, before sourcing: NAME (short, for the namespace, TUN and
# mount names) and NET (a /24 of 198.18.0.0/15 that `sockfs serve`'s
# defaults, 198.18.0.0/24, do not use; each experiment its own, so they
# can run at once). sockfs is $NET.2, the namespace $NET.1.
# Then: lib_start; the kernel runs commands with `ip netns exec "$NS"`;
# processes started in the background are registered with lib_track PID.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SOCKFS=${SOCKFS:-$here/bin/sockfs}
NS=sockfs-$NAME-$$
TUN=sf$NAME$(( $$ % 10000 ))
MNT=$(mktemp -d "/tmp/sockfs-$NAME-mnt.XXXXXX")
serve_pid=
lib_pids=()
lib_on_exit=() # commands run first on exit (restoring sysctls)

[ "$(id -u)" = 0 ] || { echo "$0: needs root (TUN device, FUSE mount, network namespace)" >&2; exit 1; }
[ -x "$SOCKFS" ] || { echo "$0: no $SOCKFS; run: go build -o bin/sockfs ./cmd/sockfs" >&2; exit 1; }

lib_track() { lib_pids+=("$1"); }

lib_cleanup() {
	set +e
	for c in "${lib_on_exit[@]}"; do eval "$c"; done
	for p in "${lib_pids[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	for fd in 3 4 5; do eval "exec $fd<&-" 2>/dev/null; done
	if [ -n "$serve_pid" ]; then
		kill -TERM "$serve_pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$serve_pid" 2>/dev/null
		wait "$serve_pid" 2>/dev/null
	fi
	grep -q " $MNT " /proc/mounts && fusermount3 -uz "$MNT"
	ip netns del "$NS" 2>/dev/null
	rmdir "$MNT" 2>/dev/null
}
trap lib_cleanup EXIT
trap 'exit 130' INT TERM

# lib_start starts serve (its log in $OUT/serve-$NAME.log), sets up the
# namespace and finds the TUN device's ipifc number (ifc).
lib_start() {
	mkdir -p "$OUT"
	echo "== sockfs serve on $TUN ($NET.2), mounted at $MNT"
	"$SOCKFS" serve --tun "$TUN" --addr "$NET.2/24" --host-addr "$NET.1/24" --addr6 '' --host-addr6 '' --mount "$MNT" --9p '' \
		2>"$OUT/serve-$NAME.log" &
	serve_pid=$!
	for _ in $(seq 100); do [ -e "$MNT/tcp/clone" ] && break; sleep 0.1; done
	[ -e "$MNT/tcp/clone" ] || { echo "serve did not mount; see $OUT/serve-$NAME.log" >&2; exit 1; }
	# The kernel side of the TUN device goes into a namespace of its own,
	# so the peer's TCP is the namespace's and nothing in the host's
	# routing changes.
	ip netns add "$NS"
	ip link set "$TUN" netns "$NS"
	ip -n "$NS" link set lo up
	ip -n "$NS" addr add "$NET.1/24" dev "$TUN"
	ip -n "$NS" link set "$TUN" up
	# The TUN device's number in ipifc/ is the one whose status lists the
	# stack's address (the stack names devices by kind: lo, tun0, ...).
	ifc=
	for d in "$MNT"/ipifc/*; do
		if grep -q "^[[:space:]]$NET\.2 " "$d/status"; then ifc=${d##*/}; fi
	done
	[ -n "$ifc" ] || { echo "no ipifc has $NET.2:" >&2; cat "$MNT"/ipifc/*/status >&2; exit 1; }
}

# lib_pcap NAME starts, when PCAP is set (a directory), tcpdump on the
# namespace's side of the device, headers only, into $PCAP/NAME.pcap; it
# ends with the script.
lib_pcap() {
	[ -n "${PCAP:-}" ] || return 0
	mkdir -p "$PCAP"
	ip netns exec "$NS" tcpdump -q -i "$TUN" -s 128 -w "$PCAP/$1.pcap" 2>/dev/null &
	lib_track $!
	sleep 0.5
}

# lib_impair sets the device's impairment: each argument is one line for
# the impair file (both directions, or one after a leading in/out), after
# clearing what was set; it prints the result.
lib_impair() {
	echo off > "$MNT/ipifc/$ifc/impair"
	for line in "$@"; do
		echo "== impairing ipifc/$ifc: $line"
		echo "$line" > "$MNT/ipifc/$ifc/impair"
	done
}
