package fuse

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	netfs "sockfs/fs"
	"sockfs/netstack/stacktest"
)

// A read(2) or write(2) of 1 MiB is one FUSE request (max_write 1 MiB,
// max_pages 256), and the reply of a read comes back whole.
func TestOneMiBRequests(t *testing.T) {
	tree, fd := mountSizeTree(t)
	buf := make([]byte, 1<<20)
	n, err := syscall.Read(fd, buf)
	if err != nil || n != len(buf) {
		t.Fatalf("read: %d, %v", n, err)
	}
	if buf[1000] != byte(1000%256) {
		t.Fatalf("read data: byte 1000 is %d", buf[1000])
	}
	if n, err := syscall.Write(fd, buf); err != nil || n != len(buf) {
		t.Fatalf("write: %d, %v", n, err)
	}
	// 4 MiB: four requests each way, each of 1 MiB.
	big := make([]byte, 4<<20)
	if n, err := syscall.Write(fd, big); err != nil || n != len(big) {
		t.Fatalf("write 4 MiB: %d, %v", n, err)
	}
	tree.mu.Lock()
	defer tree.mu.Unlock()
	if fmt.Sprint(tree.reads) != "[1048576]" {
		t.Errorf("reads reached the tree as %v, want one of 1 MiB", tree.reads)
	}
	if fmt.Sprint(tree.writes) != "[1048576 1048576 1048576 1048576 1048576]" {
		t.Errorf("writes reached the tree as %v, want 1 MiB each", tree.writes)
	}
}

// A 1 MiB read(2) of a TCP conversation's data returns 1 MiB at once
// when that much is queued, straight from the receive queue.
func TestDataReadOneMiB(t *testing.T) {
	needFuse(t)
	sa, sb := stacktest.Pair(t)
	ma, err := Mount(t.TempDir(), netfs.New(sa, netfs.Options{}).Root())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ma.Unmount() })
	ln, err := sb.ListenTCP(netip.MustParseAddrPort("198.18.0.2:9100"), 8)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	ctl, err := os.OpenFile(filepath.Join(ma.Dir, "tcp", "clone"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	nb := make([]byte, 16)
	k, err := ctl.Read(nb)
	if err != nil {
		t.Fatal(err)
	}
	conv := string(nb[:k])
	for _, cmd := range []string{"rcvbuf 4194304", "connect 198.18.0.2!9100"} {
		if _, err := ctl.WriteString(cmd); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/2/16) // 1.5 MiB
	go c.Write(payload)

	// Until 1 MiB is queued (qin in status).
	status := filepath.Join(ma.Dir, "tcp", conv, "status")
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(status)
		f := strings.Fields(string(b))
		qin := 0
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "qin" {
				qin, _ = strconv.Atoi(f[i+1])
			}
		}
		if qin >= 1<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("qin stayed at %d: %s", qin, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	fd, err := syscall.Open(filepath.Join(ma.Dir, "tcp", conv, "data"), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	buf := make([]byte, 1<<20)
	n, err := syscall.Read(fd, buf)
	if err != nil || n != 1<<20 {
		t.Fatalf("read(2) of 1 MiB with %d+ queued returned %d, %v", 1<<20, n, err)
	}
	if !bytes.Equal(buf, payload[:n]) {
		t.Fatal("data differs")
	}
}

// Mounting through fusermount3 (what a non-root daemon does) gives the
// same tree.
func TestMountFusermount(t *testing.T) {
	needFuse(t)
	useFusermount = true
	defer func() { useFusermount = false }()
	tree := &sizeTree{}
	m, err := Mount(t.TempDir(), tree.root())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Unmount()
	b, err := os.ReadFile("/proc/mounts")
	if err != nil || !strings.Contains(string(b), "sockfs "+m.Dir+" fuse.sockfs") {
		t.Fatalf("not in /proc/mounts as sockfs fuse.sockfs: %v", err)
	}
	f, err := os.OpenFile(filepath.Join(m.Dir, "io"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("hello"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("server did not stop after unmount")
	}
}

// TestDdOneMiBThroughData: bash and dd as the clients, 1 MiB per call:
// 8 MiB written with dd bs=1M into A's data arrives byte-exact at B,
// read there with dd bs=1M, both sides subprocesses.
func TestDdOneMiBThroughData(t *testing.T) {
	p := newPair(t)
	out := p.sh(t, `
src=$(mktemp); dst=$(mktemp)
head -c 8388608 /dev/urandom > $src
exec 3<>$B/tcp/clone; nb=$(cat <&3)
echo 'announce 9200' >&3
( exec 4<>$B/tcp/$nb/listen; nc=$(cat <&4)
  dd if=$B/tcp/$nc/data of=$dst bs=1M iflag=fullblock status=none
) &
exec 5<>$A/tcp/clone; na=$(cat <&5)
echo 'connect 198.18.0.2!9200' >&5
dd if=$src of=$A/tcp/$na/data bs=1M status=none
exec 5<&-
wait
cmp $src $dst && echo same
stat -c %s $dst
rm -f $src $dst
`)
	if !strings.Contains(out, "same\n8388608\n") {
		t.Fatalf("output %q", out)
	}
}
