#!/bin/bash
# Plan 9's UDP server: announce, then each open of listen is the call of a
# new remote (its remote is the sender); echo one datagram per call back to
# it. The kernel peer is a python3 client with two sockets, one after the
# other; it writes "port reply" lines to $OUT.
set -e
exec 3<>"$M/udp/clone"
n=$(cat <&3)
echo 'announce 7007' >&3
python3 - >"$OUT" <<'PY' &
import socket
for name in ("A", "B"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("198.18.0.1", 0))
    s.settimeout(10)
    s.sendto(("hello-" + name).encode(), ("198.18.0.2", 7007))
    data, _ = s.recvfrom(100)
    print(s.getsockname()[1], data.decode(), flush=True)
PY
py=$!
for i in 1 2; do
	exec 5<"$M/udp/$n/listen"          # blocks until a datagram from a new remote
	c=$(cat <&5)
	echo "call $c $(cat "$M/udp/$c/remote")"
	exec 6<>"$M/udp/$c/data"
	d=$(dd bs=65536 count=1 status=none <&6)
	printf 'echo:%s' "$d" >&6
	exec {keep}<&5 6<&- 5<&-             # keep the call, so the next one is another conversation
done
wait $py
