// Package fuse serves a sockfs/fs tree over FUSE. It speaks the kernel's
// FUSE protocol on /dev/fuse itself (server.go), with no FUSE library:
// bazil.org/fuse, used before, caps requests at 128 KiB and negotiates no
// max_pages, and github.com/hanwen/go-fuse/v2 (v2.12.1), which does,
// answers POLL with ENOSYS, after which the kernel reports every file of
// the mount always ready, so select and poll on data would be lost.
//
// Transport rules (NET-FILES.md): DIRECT_IO on every file; FOPEN_STREAM and
// NONSEEKABLE on stream files (data, listen, ctl, clone), for which the
// frontend keeps the read cursor; entry and attribute timeouts 0; truncation
// (SETATTR size=0) accepted and ignored; INTERRUPT cancels the request
// context (EINTR); POLL answered from the handle with wake-ups sent through
// NOTIFY_POLL; conversation references dropped on RELEASE, never on FLUSH.
// Requests of up to 1 MiB both ways (max_write 1 MiB, max_pages 256): a
// READ is answered from a pooled buffer the tree handle reads straight
// into, a WRITE from the buffer the request was read into. Mounted
// allow_other without default_permissions: every user reaches the tree,
// which checks ownership itself (a conversation is its opener's). Unmount
// detaches lazily when files are still open; Mount recovers a stale mount
// point (a killed daemon's) and refuses a live one.
//
// Blocked open, read and write calls also watch the caller's pending
// signals (watchSignals), a second line behind INTERRUPT.
//
// The serving process may open files on its own mount: the POLL that the
// Go runtime's netpoller then sends is answered without the Go scheduler
// (ownpoll.go), which would otherwise deadlock the process.
package fuse

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	netfs "sockfs/fs"
)

// MountPoint is a served FUSE mount.
type MountPoint struct {
	Dir  string
	s    *server
	done chan error
	once sync.Once
}

// useFusermount makes Mount go through fusermount3 even as root (tests).
var useFusermount = false

// Mount mounts root at dir and serves it in the background; it returns
// once the kernel's INIT is answered. A stale mount left at dir by a
// killed daemon is lazily unmounted first.
func Mount(dir string, root netfs.Dir) (*MountPoint, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := RecoverStale(dir); err != nil {
		return nil, err
	}
	fd, err := mountFD(dir)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	s := newServer(fd, root)
	s.dir = dir
	if err := s.handshake(); err != nil {
		unix.Close(fd)
		lazyUnmount(dir)
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	if err := s.startSentinel(); err != nil {
		unix.Close(fd)
		lazyUnmount(dir)
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	m := &MountPoint{Dir: dir, s: s, done: make(chan error, 1)}
	go func() { m.done <- s.serve() }()
	return m, nil
}

// mountFD mounts a FUSE file system at dir and returns its /dev/fuse
// descriptor: with mount(2) as root, else through fusermount3 (from
// Debian's fuse3), which passes the descriptor back over a socket. The
// options are the same either way: source sockfs, type fuse.sockfs,
// allow_other, nosuid, nodev.
func mountFD(dir string) (int, error) {
	if os.Geteuid() != 0 || useFusermount {
		return fusermount(dir)
	}
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	opts := fmt.Sprintf("fd=%d,rootmode=40000,user_id=%d,group_id=%d,allow_other", fd, os.Getuid(), os.Getgid())
	if err := unix.Mount("sockfs", dir, "fuse.sockfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		unix.Close(fd)
		if err == unix.EPERM {
			return fusermount(dir)
		}
		return -1, err
	}
	return fd, nil
}

func fusermount(dir string) (int, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "fusermount-ours"), os.NewFile(uintptr(fds[1]), "fusermount-theirs")
	defer ours.Close()
	cmd := exec.Command("fusermount3", "-o", "allow_other,fsname=sockfs,subtype=sockfs", "--", dir)
	cmd.ExtraFiles = []*os.File{theirs} // fd 3 in the child
	cmd.Env = append(os.Environ(), "_FUSE_COMMFD=3")
	out, err := cmd.CombinedOutput()
	theirs.Close()
	if err != nil {
		return -1, fmt.Errorf("fusermount3: %v: %s", err, strings.TrimSpace(string(out)))
	}
	buf := make([]byte, 4)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(fds[0], buf, oob, 0)
	if err != nil {
		return -1, fmt.Errorf("fusermount3: receive fd: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1, fmt.Errorf("fusermount3: no fd passed (%v)", err)
	}
	got, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(got) != 1 {
		return -1, fmt.Errorf("fusermount3: no fd passed (%v)", err)
	}
	unix.CloseOnExec(got[0])
	return got[0], nil
}

// unmount unmounts dir (not lazily).
func unmount(dir string) error {
	err := unix.Unmount(dir, 0)
	if err == unix.EPERM {
		if out, err2 := exec.Command("fusermount3", "-u", dir).CombinedOutput(); err2 != nil {
			return fmt.Errorf("unmount %s: %v: %s", dir, err2, out)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}

// Unmount unmounts: plainly if nothing has files open (retrying for 200
// ms), else lazily (the mount point is detached at once; open files keep the
// connection until they are closed or this process exits, which aborts it).
// It waits up to a second for the server to stop; requests still blocked
// then (a listen open, a data read) end when the stack closes or the
// process exits. Safe to call more than once.
func (m *MountPoint) Unmount() error {
	var err error
	m.once.Do(func() {
		for i := 0; i < 4; i++ {
			if err = unmount(m.Dir); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			err = lazyUnmount(m.Dir)
		}
		select {
		case r := <-m.done:
			unix.Close(m.s.fd)
			m.done <- r
		case <-time.After(time.Second):
		}
	})
	return err
}

// Done yields Serve's result once the server stops.
func (m *MountPoint) Done() <-chan error { return m.done }

func lazyUnmount(dir string) error {
	if err := unix.Unmount(dir, unix.MNT_DETACH); err == nil {
		return nil
	}
	if out, err := exec.Command("fusermount3", "-uz", dir).CombinedOutput(); err == nil {
		return nil
	} else if out2, err2 := exec.Command("umount", "-l", dir).CombinedOutput(); err2 != nil {
		return fmt.Errorf("unmount %s: %v: %s; %v: %s", dir, err, out, err2, out2)
	}
	return nil
}

// ErrMounted is returned by Mount and RecoverStale when dir is a FUSE mount
// whose server is still alive.
var ErrMounted = errors.New("already a live FUSE mount (another sockfs serve?)")

// RecoverStale lazily unmounts a dead FUSE mount at dir: one whose server
// was killed, so that stat answers ENOTCONN ("Transport endpoint is not
// connected"). A FUSE mount that still answers is left alone and reported
// as ErrMounted, so a second daemon cannot steal a live mount point.
func RecoverStale(dir string) error {
	_, err := os.Stat(dir)
	if errors.Is(err, syscall.ENOTCONN) {
		return lazyUnmount(dir)
	}
	if isFuseMount(dir) {
		return fmt.Errorf("%s: %w", dir, ErrMounted)
	}
	return nil
}

func isFuseMount(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts ... - fstype source superopts
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || unescape(fields[4]) != dir {
			continue
		}
		for i, x := range fields {
			if x == "-" && i+1 < len(fields) && strings.HasPrefix(fields[i+1], "fuse") {
				return true
			}
		}
	}
	return false
}

func unescape(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}
