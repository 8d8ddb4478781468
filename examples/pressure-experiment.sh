#!/usr/bin/env bash
# pressure-experiment.sh: TCP memory pressure with 200 connections and a
# lowered tcp_mem. Over a `rate 100mbit delay 5ms` device (both ways):
#
#   100 connections from a kernel sender in a network namespace this
#       script creates into a sockfs listener (sockfs receives); half of
#       them write 64 KiB at a time, half 256-byte messages with
#       TCP_NODELAY (small segments);
#   100 connections from sockfs to a kernel receiver there (sockfs sends).
#
# Both applications go through cycles of $PERIOD seconds: for the first
# half nobody reads (the receive queues of both ends fill), for the second
# half everybody reads; the senders write all the time. sockfs's
# sys/ipv4/tcp_mem is lowered to $TCP_MEM pages, so TCP's memory crosses
# the pressure threshold in each stall and falls back in each drain.
# `sockfs trace` samples one receiving and one sending sockfs conversation
# (and with them protocols and netstat) every 20 ms; `sockfs plot` draws
# TCP's pages against tcp_mem, the pruning and pressure counters
# (TCPMemoryPressures, PruneCalled, RcvPruned, TCPRcvCollapsed), and the
# two conversations' memory: r/rb of the receiver (pruning and collapsing)
# and w/tb of the sender (sndbuf moderated under pressure by
# sk_stream_moderate_sndbuf, grown back by tcp_new_space/tcp_check_space).
#
# Needs root, /dev/net/tun, /dev/fuse, fusermount3, ip and python3.
# Usage: examples/pressure-experiment.sh [OUTDIR]     (make examples)
# Environment: SOCKFS (binary), SECS (default 16), PERIOD (default 4),
# CONNS (default 200), TCP_MEM (pages, default "3072 4096 6144").
set -euo pipefail

SECS=${SECS:-16}
PERIOD=${PERIOD:-4}
CONNS=${CONNS:-200}
TCP_MEM=${TCP_MEM:-3072 4096 6144}
NAME=mp
NET=198.19.79
OUT=${1:-$(cd "$(dirname "$0")/.." && pwd)/examples/out}
KPORT=5200 # the kernel's listener
SPORT=5201 # sockfs's listener
. "$(dirname "$0")/lib.sh"

lib_start
lib_impair 'rate 100mbit delay 5ms' # each way
echo "== tcp_mem $(cat "$MNT/sys/ipv4/tcp_mem" | tr -s '\t ' ' ') -> $TCP_MEM (pages)"
printf '%s\n' "$TCP_MEM" > "$MNT/sys/ipv4/tcp_mem"
half=$((CONNS / 2))
# The cycles' common t0 and end, written by sockfs's side once all the
# connections are up; the kernel's side reads them from the same file.
go=$OUT/pressure-go.txt
rm -f "$go"

# The kernel's side: a receiver that reads in the cycles and a sender that
# writes all the time, both bounded by $end.
ip netns exec "$NS" python3 - "$NET" "$KPORT" "$SPORT" "$half" "$go" "$((SECS + 60))" "$PERIOD" <<'PY' &
import os, selectors, socket, sys, time
net, kport, sport, n, go, life, period = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], float(sys.argv[6]), float(sys.argv[7])
start, end = float("inf"), time.time() + life  # until the go file says
def reading(now): return now >= start and (now - start) % period >= period / 2
sel = selectors.DefaultSelector()
ls = socket.create_server((net + ".1", kport), backlog=n)
ls.setblocking(False)
sel.register(ls, selectors.EVENT_READ, "listen")
out = []
buf, small = b"\0" * 65536, b"\0" * 256
deadline = time.time() + 15
while len(out) < n and time.time() < deadline:  # connect, retrying until sockfs listens
    try:
        s = socket.create_connection((net + ".2", sport), timeout=2)
        s.setblocking(False)
        # Every other sender writes 256-byte messages with TCP_NODELAY:
        # small segments, whose skbs carry far more truesize than data,
        # what tcp_collapse compacts.
        kind = "send"
        if len(out) % 2:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            kind = "small"
        out.append(s)
        sel.register(s, selectors.EVENT_WRITE, kind)
    except OSError:
        time.sleep(0.1)
inbound, got, sent = [], 0, 0
while time.time() < end:
    if start == float("inf") and os.path.exists(go):
        start, end = map(float, open(go).read().split())
    for key, ev in sel.select(timeout=0.05):
        if key.data == "listen":
            c, _ = ls.accept()
            c.setblocking(False)
            inbound.append(c)
        elif key.data in ("send", "small"):
            if time.time() < start:
                time.sleep(0.001)  # writable sockets: no busy loop before t0
                continue
            try:
                sent += key.fileobj.send(buf if key.data == "send" else small)
            except (BlockingIOError, ConnectionError):
                pass
        elif key.data == "recv":
            try:
                b = key.fileobj.recv(1 << 20)
                got += len(b)
                if not b:
                    sel.unregister(key.fileobj)
            except (BlockingIOError, ConnectionError):
                pass
    rd = reading(time.time())
    for c in inbound:  # read only in the reading half of a cycle
        k = sel.get_map().get(c.fileno())
        if rd and k is None:
            sel.register(c, selectors.EVENT_READ, "recv")
        elif not rd and k is not None:
            sel.unregister(c)
print(f"kernel: {len(out)} out, {len(inbound)} in; sent {sent} read {got} bytes", file=sys.stderr)
PY
lib_track $!
for _ in $(seq 50); do ip netns exec "$NS" ss -tlnH "( sport = :$KPORT )" | grep -q . && break; sleep 0.1; done

# sockfs's side, through the files: announce, accept $half calls, connect
# $half times; a thread per data file reads in the cycles or writes all
# the time. The conversation numbers of the first of each go to convs.
convs=$OUT/pressure-convs.txt
rm -f "$convs"
python3 - "$MNT" "$NET" "$KPORT" "$SPORT" "$half" "$go" "$SECS" "$PERIOD" "$convs" <<'PY' &
import os, sys, threading, time
mnt, net, kport, sport, n, go, secs, period, convs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6], float(sys.argv[7]), float(sys.argv[8]), sys.argv[9]
def reading(now): return now >= start and (now - start) % period >= period / 2
def clone():
    fd = os.open(f"{mnt}/tcp/clone", os.O_RDWR)
    return fd, os.read(fd, 32).decode().strip()
lfd, ln = clone()
os.write(lfd, f"announce {sport}".encode())
keep = []
acc, con = [], []
def accept_all():
    for _ in range(n):
        fd = os.open(f"{mnt}/tcp/{ln}/listen", os.O_RDWR)
        c = os.read(fd, 32).decode().strip()
        keep.append(fd)
        acc.append(c)
threading.Thread(target=accept_all, daemon=True).start()
for _ in range(n):
    fd, c = clone()
    os.write(fd, f"connect {net}.1!{kport}".encode())
    keep.append(fd)
    con.append(c)
deadline = time.time() + 20
while len(acc) < n and time.time() < deadline:
    time.sleep(0.05)
# Start in 1 s, when the traces run.
start = time.time() + 1
end = start + secs
for path, text in ((go, f"{start} {end}\n"), (convs, f"{acc[0]} {con[0]} {start} {end}\n")):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)
moved = {"r": 0, "w": 0}
lock = threading.Lock()
def count(k, n):
    with lock:
        moved[k] += n
def reader(c):
    fd = os.open(f"{mnt}/tcp/{c}/data", os.O_RDONLY)
    while time.time() < end:
        if not reading(time.time()):
            time.sleep(0.02)
            continue
        try:
            count("r", len(os.read(fd, 65536)))
        except OSError:
            return
def writer(c):
    fd = os.open(f"{mnt}/tcp/{c}/data", os.O_WRONLY)
    buf = b"\0" * 65536
    time.sleep(max(0, start - time.time()))
    while time.time() < end:
        try:
            count("w", os.write(fd, buf))
        except OSError:
            return
for c in acc:
    threading.Thread(target=reader, args=(c,), daemon=True).start()
for c in con:
    threading.Thread(target=writer, args=(c,), daemon=True).start()
time.sleep(max(0, end - time.time()))
print(f"sockfs app: {len(acc)} accepted, {len(con)} connected; read {moved['r']} wrote {moved['w']} bytes", file=sys.stderr)
os._exit(0)  # the blocked reads and writes are interrupted; the files close
PY
app=$!
lib_track "$app"
for _ in $(seq 200); do [ -s "$convs" ] && break; sleep 0.1; done
[ -s "$convs" ] || { echo "the connections were not made" >&2; exit 1; }
read -r rconv sconv start end < "$convs"
echo "== tracing tcp/$rconv (receives) and tcp/$sconv (sends)"
dur=$(python3 -c "import time; print(int($end - time.time()) + 2)")
for side in recv send; do
	conv=$rconv
	[ $side = send ] && conv=$sconv
	"$SOCKFS" trace "$MNT" --conv "tcp/$conv" --every 20ms --for "${dur}s" -o "$OUT/pressure-$side.csv" &
	lib_track $!
done
for p in "${lib_pids[@]}"; do [ "$p" = "$serve_pid" ] || wait "$p" 2>/dev/null || true; done
lib_pids=()
grep -E '^TcpExt:' "$MNT/netstat" > "$OUT/pressure-netstat.txt" || true
for ext in png svg; do
	"$SOCKFS" plot "$OUT/pressure-recv.csv" "$OUT/pressure-send.csv" --label receiver --label sender \
		--one-stack --panels tcpmem,pressure,rmem,wmem,throughput -height 1300 -o "$OUT/pressure.$ext" \
		-title "$CONNS connections, tcp_mem $TCP_MEM"
done
echo "== done: $OUT/pressure.{png,svg}, $OUT/pressure-{recv,send}.csv"
