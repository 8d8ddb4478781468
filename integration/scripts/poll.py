#!/usr/bin/env python3
"""poll.py MOUNT PORT: select() on a TCP data file (not readable while
empty, readable once the kernel peer sends), then a bash `read` bounded by
`timeout 1` on an empty data file times out and consumes nothing, and
poll(POLLRDHUP) reports the peer's FIN. Runs in
the test's namespace; prints one result line per check and exits non-zero
on the first failure.

bash's own `read -t 1` cannot be used: bash 5.2 turns the timeout off when
fstat says stdin is a regular file, and a FUSE file can only be a regular
file (a FUSE FIFO or device inode would not reach the daemon)."""
import os
import select
import socket
import subprocess
import sys
import time

mnt, port = sys.argv[1], int(sys.argv[2])
ln = socket.socket()
ln.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ln.bind(("198.18.0.1", port))
ln.listen(1)
ln.settimeout(10)

ctl = os.open(mnt + "/tcp/clone", os.O_RDWR)
n = os.read(ctl, 32).decode()
os.write(ctl, ("connect 198.18.0.1!%d" % port).encode())
peer, _ = ln.accept()
data = os.open("%s/tcp/%s/data" % (mnt, n), os.O_RDWR)

r, w, _ = select.select([data], [data], [], 0.5)
print("empty readable=%s writable=%s" % (data in r, data in w), flush=True)
if data in r or data not in w:
    sys.exit(1)

t0 = time.monotonic()
peer.sendall(b"ping")
r, _, _ = select.select([data], [], [], 5)
dt = time.monotonic() - t0
print("after-send readable=%s in=%.3fs" % (data in r, dt), flush=True)
if data not in r:
    sys.exit(1)
got = os.read(data, 100)
print("read=%r" % got, flush=True)
if got != b"ping":
    sys.exit(1)

# Now empty again: a bash read bounded by timeout(1) must time out (124),
# interrupted by SIGINT.
t0 = time.monotonic()
rc = subprocess.call(["timeout", "-s", "INT", "1", "bash", "-c", 'read -r x <"$1"', "bash",
                      "%s/tcp/%s/data" % (mnt, n)])
dt = time.monotonic() - t0
print("timeout-read rc=%d in=%.3fs" % (rc, dt), flush=True)
if rc != 124 or dt > 2:
    sys.exit(1)
# ...and the data sent afterwards is all still there.
peer.sendall(b"pong\n")
r, _, _ = select.select([data], [], [], 5)
got = os.read(data, 100) if data in r else b""
print("after-read-t read=%r" % got, flush=True)
if got != b"pong\n":
    sys.exit(1)
# The peer's FIN: poll(POLLIN|POLLRDHUP) reports both, as for a kernel
# socket (0x2001); FUSE passes POLLRDHUP on only if the server answers it.
p = select.poll()
p.register(data, select.POLLIN | select.POLLRDHUP)
print("before-fin poll=%r" % p.poll(0), flush=True)
peer.shutdown(socket.SHUT_WR)
ev = 0
for _ in range(50):
    ev = dict(p.poll(100)).get(data, 0)
    if ev & select.POLLRDHUP:
        break
print("after-fin poll=%#x" % ev, flush=True)
if ev & (select.POLLIN | select.POLLRDHUP) != select.POLLIN | select.POLLRDHUP:
    sys.exit(1)
print("ok", flush=True)
