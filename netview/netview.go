// Package netview reads a sockfs /net tree through its files alone (never
// through the stack's Go API), so it works the same on a local FUSE mount
// and on a remote tree brought in with `sockfs import`. It parses the
// conversation files (status, local, remote, mem), protocols, netstat,
// sockstat and ipifc/N/{status,stats} into structs.
//
// Parsing is strict about the fields it knows (a malformed number or a
// missing skmem field is an error) and tolerant of extra ones: an unknown
// status pair, skmem field, netstat group or sockstat field is kept, not
// refused, so older tools keep working against a newer tree.
//
// Every function reads files and may block for as long as the mount takes
// to answer; none holds a lock or keeps a file open after it returns. The
// tools never open ctl, data, err or listen, so reading never keeps a
// conversation alive.
package netview

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultMount is where `sockfs serve` mounts the tree by default.
const DefaultMount = "/mnt/sockfs"

// Snapshot is one reading of the whole tree. Files are read one after the
// other, so the parts are close in time, not atomic together.
type Snapshot struct {
	Time      time.Time // when the reading started (monotonic clock included)
	Convs     []Conv
	Protocols []Protocol
	Netstat   Netstat
	Sockstat  Sockstat
}

// Read reads everything under mount. A conversation whose files cannot be
// read is skipped if it went away meanwhile; any other failure is returned.
func Read(mount string) (*Snapshot, error) {
	s := &Snapshot{Time: time.Now()}
	var err error
	if s.Convs, err = ReadConvs(mount); err != nil {
		return nil, err
	}
	if s.Protocols, err = ReadProtocols(mount); err != nil {
		return nil, err
	}
	if s.Netstat, err = ReadNetstat(mount); err != nil {
		return nil, err
	}
	if s.Sockstat, err = ReadSockstat(mount); err != nil {
		return nil, err
	}
	return s, nil
}

// Protocol returns the protocols entry called name (TCP, UDP), if any.
func (s *Snapshot) Protocol(name string) (Protocol, bool) {
	for _, p := range s.Protocols {
		if strings.EqualFold(p.Name, name) {
			return p, true
		}
	}
	return Protocol{}, false
}

// readText reads a whole file with plain system calls, not an os.File: Go
// registers files that support poll (FUSE files do) with its network
// poller, which costs a FUSE POLL round trip per open and, when the reader
// is also the process serving the mount (tests), lets the poller thread
// block inside epoll_wait on a request its own process must answer.
func readText(path string) (string, error) {
	// EINTR is retried as os.Open does: the Go runtime's preemption signal
	// can interrupt an open that waits on the FUSE server (on an imported
	// mount, a 9P round trip, which the server then flushes).
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	for tries := 0; err == syscall.EINTR && tries < 100; tries++ {
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	}
	if err != nil {
		return "", &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	var out []byte
	buf := make([]byte, 16<<10)
	for range 1 << 12 { // at most 64 MiB: the files are small
		n, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return "", &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return string(out), nil
		}
		out = append(out, buf[:n]...)
	}
	return "", fmt.Errorf("%s: too large", path)
}

// CheckMount reports an error if mount does not look like a sockfs tree.
func CheckMount(mount string) error {
	for _, f := range []string{"tcp/clone", "netstat", "protocols"} {
		if _, err := os.Stat(filepath.Join(mount, f)); err != nil {
			return fmt.Errorf("%s is not a sockfs tree (no %s): %w", mount, f, err)
		}
	}
	return nil
}

// ConvDirs lists the conversation numbers present under mount/proto, in
// increasing order.
func ConvDirs(mount, proto string) ([]int, error) {
	ents, err := os.ReadDir(filepath.Join(mount, proto))
	if err != nil {
		return nil, err
	}
	var ns []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil || strconv.Itoa(n) != e.Name() || !e.IsDir() {
			continue // clone, stats, and anything new
		}
		ns = append(ns, n)
	}
	sort.Ints(ns)
	return ns, nil
}

// ReadConvs reads every conversation slot of tcp/ and udp/ (including
// unused ones, whose state is Closed; see Conv.InUse).
func ReadConvs(mount string) ([]Conv, error) {
	var out []Conv
	for _, proto := range []string{"tcp", "udp"} {
		ns, err := ConvDirs(mount, proto)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, n := range ns {
			c, err := ReadConv(mount, proto, n)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}
