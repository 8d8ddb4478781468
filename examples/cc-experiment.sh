#!/usr/bin/env bash
# cc-experiment.sh: CUBIC, BBR and Reno side by side, sockfs sending. For
# each link set on the device's ipifc/N/impair:
#
#   lossy:  delay 50ms loss 1%, each way (100 ms RTT, random loss)
#   queue:  rate 100mbit delay 20ms limit 100, each way (40 ms RTT). As in
#           netem, limit counts every packet the impairment holds, those
#           in the delay line too: 20 ms at 100 Mbit/s is 167 packets, so
#           the limit, not the rate, caps the link, at about 100 packets
#           per 20 ms (60 Mbit/s), with no room for a queue.
#   bneck:  out rate 100mbit limit 100, in delay 40ms (40 ms RTT): the
#           delay on the ACK path, so the 100 packets of the limit are a
#           real bottleneck queue in front of a 100 Mbit/s link (BDP 333
#           packets of 1500 bytes).
#
# sockfs connects to a kernel TCP receiver in a network namespace this
# script creates and writes zeros into the conversation's data file for
# $SECS seconds, once per algorithm (`congestion NAME` on the
# conversation's ctl, TCP_CONGESTION). `sockfs trace` samples the sending
# conversation every 10 ms (cwnd, ssthresh, srtt, min_rtt, pacing and
# delivery rate, BBR's model); `sockfs plot` overlays the three runs of a
# link in one figure: throughput, cwnd, queueing delay (srtt - min_rtt),
# rates. A summary table goes to $OUT/cc-summary.txt.
#
# Needs root, /dev/net/tun, /dev/fuse, fusermount3, ip and python3.
# Usage: examples/cc-experiment.sh [OUTDIR]     (make examples)
# Environment: SOCKFS (binary, default bin/sockfs), SECS (per run, default
# 15), ALGS (default "cubic bbr reno"), LINKS (default "lossy queue bneck").
set -euo pipefail

SECS=${SECS:-15}
ALGS=${ALGS:-cubic bbr reno}
LINKS=${LINKS:-lossy queue bneck}
NAME=cc
NET=198.19.78
OUT=${1:-$(cd "$(dirname "$0")/.." && pwd)/examples/out}
PORT=5100
. "$(dirname "$0")/lib.sh"

# Each link's lines for the impair file, separated by ";".
declare -A IMPAIR=(
	[lossy]='delay 50ms loss 1%'
	[queue]='rate 100mbit delay 20ms limit 100'
	[bneck]='out rate 100mbit limit 100;in delay 40ms'
)

lib_start
# The receiver's buffer must not be the limit: up to 32 MiB.
ip netns exec "$NS" sysctl -qw net.ipv4.tcp_rmem="4096 131072 33554432"
# The kernel receiver: accepts every connection and reads it to the end.
ip netns exec "$NS" python3 - "$NET.1" "$PORT" "$((SECS * 12 + 120))" <<'PY' &
import socket, sys, threading
host, port, life = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ls = socket.create_server((host, port))
ls.settimeout(life)  # bounded: the script's whole run
def drain(c):
    n = 0
    with c:
        while True:
            b = c.recv(1 << 20)
            if not b:
                break
            n += len(b)
    print(f"receiver: {n} bytes", file=sys.stderr)
try:
    while True:
        c, _ = ls.accept()
        threading.Thread(target=drain, args=(c,), daemon=True).start()
except socket.timeout:
    pass
PY
lib_track $!
for _ in $(seq 50); do ip netns exec "$NS" ss -tlnH "( sport = :$PORT )" | grep -q . && break; sleep 0.1; done

summary=$OUT/cc-summary.txt
: > "$summary"
for link in $LINKS; do
	IFS=';' read -ra lines <<< "${IMPAIR[$link]}"
	lib_impair "${lines[@]}"
	for alg in $ALGS; do
		echo "== $link: $alg, $SECS s"
		exec 3<>"$MNT/tcp/clone"
		n=$(cat <&3)
		echo "congestion $alg" >&3
		echo "connect $NET.1!$PORT" >&3
		csv=$OUT/cc-$link-$alg.csv
		"$SOCKFS" trace "$MNT" --conv "tcp/$n" --every 10ms --for "$((SECS + 1))s" -o "$csv" &
		trace_pid=$!
		lib_track "$trace_pid"
		# The sender: as fast as the conversation takes it, for SECS s
		# (conv=notrunc: no O_TRUNC on the data file).
		timeout "$SECS" dd if=/dev/zero of="$MNT/tcp/$n/data" bs=64k conv=notrunc status=none || true
		wait "$trace_pid"
		"$SOCKFS" ss "$MNT" -port "$PORT" || true
		exec 3<&- # close: FIN after the queued data
		sleep 1
	done
	labels=()
	csvs=()
	for alg in $ALGS; do labels+=(--label "$alg"); csvs+=("$OUT/cc-$link-$alg.csv"); done
	for ext in png svg; do
		"$SOCKFS" plot "${csvs[@]}" "${labels[@]}" -o "$OUT/cc-$link.$ext" -height 1100 \
			--panels throughput,cwnd,qdelay,rate -title "$link (${IMPAIR[$link]//;/, })"
	done
	cat "$MNT/ipifc/$ifc/impair" | tee "$OUT/cc-$link-impair.txt"
	# Per run: goodput (bytes_acked over the run), mean queueing delay
	# (srtt - min_rtt) after the first 2 s, retransmitted segments.
	python3 - "$link" "$SECS" "${csvs[@]}" >> "$summary" <<'PY'
import csv, sys
link, secs = sys.argv[1], float(sys.argv[2])
for path in sys.argv[3:]:
    rows = list(csv.DictReader(open(path)))
    alg = rows[0]["congestion"] or path
    acked = [(float(r["t_ms"]), int(r["bytes_acked"])) for r in rows if r["bytes_acked"]]
    (t0, b0), (t1, b1) = acked[0], acked[-1]
    # The sending time: until the last byte was acknowledged.
    tl = next(t for t, b in acked if b == b1)
    q = [(int(r["srtt"]) - int(r["min_rtt"])) / 1000 for r in rows
         if r["srtt"] and r["min_rtt"] and int(r["min_rtt"]) > 0 and float(r["t_ms"]) > 2000]
    cw = [int(r["cwnd"]) for r in rows if r["cwnd"] and float(r["t_ms"]) > 2000]
    retr = int(rows[-1]["retrans"] or 0)
    mbps = (b1 - b0) * 8 / ((tl - t0) / 1000) / 1e6 if tl > t0 else 0
    print(f"{link:6} {alg:6} goodput {mbps:6.1f} Mbit/s  qdelay mean {sum(q)/max(len(q),1):6.1f} ms "
          f"max {max(q, default=0):6.1f} ms  cwnd mean {sum(cw)/max(len(cw),1):6.0f}  retrans {retr}")
PY
done
cat "$summary"
echo "== done: $OUT/cc-{${LINKS// /,}}.{png,svg}, $summary"
