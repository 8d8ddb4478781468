#!/usr/bin/env bash
# rmem-experiment.sh: how tcp_rmem shapes a receiver's memory on a long,
# lossy path. A kernel TCP sender in a network namespace this script
# creates sends bulk data for $SECS seconds into sockfs over its TUN device,
# impaired to 50 ms delay and 1% loss each way (ipifc/N/impair), once for
# each of three tcp_rmem settings. Each run is traced with `sockfs trace`
# (10 ms samples of the receiving conversation's mem and status, the
# protocols file and the drop/prune counters) and drawn with `sockfs plot`.
#
# Everything goes through the files of the mount; the tools would work the
# same on a tree brought in with `sockfs import`.
#
# Needs root, /dev/net/tun, /dev/fuse, fusermount3, ip and python3.
# Usage: examples/rmem-experiment.sh [OUTDIR]     (make examples)
# Environment: SOCKFS (binary, default bin/sockfs), SECS (per run, default 20),
# RUNS (the settings to run, default "small default large"), PCAP (a
# directory: capture each run's headers there with tcpdump).
set -euo pipefail

SECS=${SECS:-20}
NAME=rmem
NET=198.19.77
OUT=${1:-$(cd "$(dirname "$0")/.." && pwd)/examples/out}
PORT=5000 # each run listens on the next port
. "$(dirname "$0")/lib.sh"

# name:tcp_rmem (min default max), smallest to largest.
SETTINGS=(
	"small:4096 16384 65536"
	"default:4096 131072 6291456"
	"large:4096 1048576 33554432"
)

lib_start
lib_impair 'delay 50ms loss 1%' # each way
cat "$MNT/ipifc/$ifc/impair"

orig_rmem=$(cat "$MNT/sys/ipv4/tcp_rmem")
RUNS=${RUNS:-small default large}
for s in "${SETTINGS[@]}"; do
	name=${s%%:*}
	rmem=${s#*:}
	case " $RUNS " in *" $name "*) ;; *) continue ;; esac
	echo "== run $name: tcp_rmem $rmem, $SECS s"
	printf '%s\t%s\t%s\n' $rmem > "$MNT/sys/ipv4/tcp_rmem"
	# A fresh listener per run: an accepted conversation inherits its
	# listener's rcvbuf (as in Linux), so the new tcp_rmem[1] must be in
	# force when the listener is made. fd 3 keeps it.
	PORT=$((PORT + 1))
	lib_pcap "rmem-$name"
	exec 3<>"$MNT/tcp/clone"
	nl=$(cat <&3)
	echo "announce $PORT" >&3
	# The sender: kernel TCP in the namespace, writing for SECS seconds.
	ip netns exec "$NS" python3 - "$NET.2" "$PORT" "$SECS" <<'PY' &
import socket, sys, time
host, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.create_connection((host, port), timeout=10)
buf = b"x" * 65536
end = time.monotonic() + secs
sent = 0
s.settimeout(5)
while time.monotonic() < end:
    try:
        sent += s.send(buf)
    except socket.timeout:
        pass
s.shutdown(socket.SHUT_WR)
print(f"sender: {sent} bytes in {secs:.0f} s ({sent * 8 / secs / 1e6:.2f} Mbit/s offered)", file=sys.stderr)
s.close()
PY
	sender_pid=$!
	lib_track "$sender_pid"
	exec 4<>"$MNT/tcp/$nl/listen"
	n=$(cat <&4)
	# The sender's cwnd, RTT and rates come from the kernel's ss -ti in
	# the namespace (--peer), sampled every 100 ms.
	"$SOCKFS" trace "$MNT" --conv "tcp/$n" --every 10ms --for "$((SECS + 1))s" -o "$OUT/rmem-$name.csv" \
		--peer "ip netns exec $NS ss -tinH state established '( dport = :$PORT )'" &
	trace_pid=$!
	lib_track "$trace_pid"
	# The receiver: read to the sender's FIN (bounded in time).
	bytes=$(timeout $((SECS + 30)) cat "$MNT/tcp/$n/data" | wc -c) || true
	wait "$sender_pid" || true
	wait "$trace_pid"
	exec 4<&- 3<&-
	grep -o '^[a-z]* .* lost [0-9]*' "$MNT/ipifc/$ifc/impair" || true
	echo "received $bytes bytes ($(( bytes * 8 / SECS / 1000 )) kbit/s)"
	"$SOCKFS" ss "$MNT" -port "$PORT" || true
	"$SOCKFS" plot "$OUT/rmem-$name.csv" -o "$OUT/rmem-$name.svg" -title "tcp_rmem $rmem, 50 ms + 1% loss"
	"$SOCKFS" plot "$OUT/rmem-$name.csv" -o "$OUT/rmem-$name.png" -title "tcp_rmem $rmem, 50 ms + 1% loss"
	sleep 1
done
printf '%s\n' "$orig_rmem" > "$MNT/sys/ipv4/tcp_rmem"
grep -E '^TcpExt:' "$MNT/netstat" > "$OUT/netstat.txt" || true
echo "== done: $OUT/rmem-{small,default,large}.{csv,svg,png}"
