#!/usr/bin/env python3
"""Kernel-side peer for the file acceptance tests (runs inside the test's
network namespace). Prints "ready" once its socket is bound.

  peer.py sink PORT OUT [shutfirst]   accept one TCP call, (optionally shut
                                      down our write side first), read to
                                      EOF into OUT, print "eof <bytes>"
  peer.py slowsink PORT OUT           accept one TCP call, print "accepted",
                                      wait for a line on stdin, then read to
                                      EOF into OUT, print "eof <bytes>"
  peer.py hold PORT FILE              accept one TCP call, wait for a line
                                      on stdin, send FILE, close
  peer.py udp PORT OUT                receive 3 datagrams, write their sizes,
                                      TTLs and TOS bytes to OUT, answer with 3 of sizes 3, 999,
                                      1472 to the sender
"""
import socket
import sys


def tcp_listener(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("198.18.0.1", port))
    s.listen(16)
    s.settimeout(30)
    print("ready", flush=True)
    return s


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode in ("sink", "slowsink"):
        ln = tcp_listener(port)
        c, _ = ln.accept()
        c.settimeout(30)
        if mode == "slowsink":
            print("accepted", flush=True)
            sys.stdin.readline()
        if len(sys.argv) > 4 and sys.argv[4] == "shutfirst":
            c.shutdown(socket.SHUT_WR)
        n = 0
        with open(sys.argv[3], "wb") as f:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                f.write(b)
                n += len(b)
        c.close()
        print("eof", n, flush=True)
    elif mode == "hold":
        ln = tcp_listener(port)
        c, _ = ln.accept()
        print("accepted", flush=True)
        sys.stdin.readline()
        with open(sys.argv[3], "rb") as f:
            c.sendall(f.read())
        c.close()
        print("sent", flush=True)
    elif mode == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("198.18.0.1", port))
        s.settimeout(30)
        s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_RECVTTL", 12), 1)
        s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_RECVTOS", 13), 1)
        print("ready", flush=True)
        sizes, ttls, toss, src = [], [], [], None
        for _ in range(3):
            b, anc, _, src = s.recvmsg(65536, socket.CMSG_SPACE(4) * 2)
            sizes.append(str(len(b)))
            for level, typ, val in anc:
                if level == socket.IPPROTO_IP and typ == socket.IP_TTL:
                    ttls.append(str(int.from_bytes(val[:4], sys.byteorder)))
                elif level == socket.IPPROTO_IP and typ == socket.IP_TOS:
                    toss.append(str(val[0]))
        with open(sys.argv[3], "w") as f:
            f.write(" ".join(sizes) + "\n")
            f.write("ttl " + " ".join(ttls) + "\n")
            f.write("tos " + " ".join(toss) + "\n")
        for n, ch in ((3, b"a"), (999, b"b"), (1472, b"c")):
            s.sendto(ch * n, src)
        print("done", flush=True)
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
