package fs

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
)

// Types of ip(3)'s arp and ndb among the top-level files.
const (
	qArp = 29
	qNdb = 30
)

// arpFile is ip(3)'s arp, the address-resolution cache of the interfaces.
// sockfs's interfaces are TUN devices (IFF_TUN: IP packets with no link
// layer), so there is nothing to resolve and nothing to cache: the file
// reads empty, `flush` is accepted (there is nothing to flush), and `add
// type ip mac` and `del ip` are refused (EINVAL, the reason in the
// daemon's log) instead of keeping entries nothing would use.
func (t *Tree) arpFile() Node {
	return newText(qpath(protoTop, 0, qArp), "arp", 0664, func() string { return "" }, func(_ context.Context, text string) error {
		f := strings.Fields(text)
		var err error
		switch {
		case len(f) == 1 && f[0] == "flush":
			return nil
		case len(f) > 0 && (f[0] == "add" || f[0] == "del"):
			err = fmt.Errorf("%s: no link-layer addresses to resolve (the interfaces are TUN devices, IP only): %w", f[0], syscall.EINVAL)
		default:
			err = errUnknownCtl
		}
		t.log.Warn("arp write refused", "cmd", trimCmd(text), "err", err)
		return err
	})
}

// ndbMax is the size of ip(3)'s ndb buffer (Plan 9's devip keeps 1024
// bytes, its terminating NUL included).
const ndbMax = 1024

// ndbFile is ip(3)'s ndb: a small text, the network database entries
// that Plan 9's ipconfig writes (ip=, ipmask=, ipgw=, dns=) for the
// machine's other programs to read. As in devip's ndbwrite, a write at
// offset off replaces the text from off on (so `echo ... > ndb` replaces
// it and `>>` appends); writing past the end of the text or beyond 1023
// bytes is EIO and changes nothing. sockfs itself does not read it: its
// cs and dns take their resolvers from the host's resolv.conf or --dns.
func (t *Tree) ndbFile() Node {
	var mu sync.Mutex
	var text string
	f := newText(qpath(protoTop, 0, qNdb), "ndb", 0664, func() string {
		mu.Lock()
		defer mu.Unlock()
		return text
	}, nil)
	f.writeAt = func(_ context.Context, p string, off int64) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if off < 0 || off > int64(len(text)) || off+int64(len(p)) >= ndbMax {
			t.log.Warn("ndb write refused", "offset", off, "bytes", len(p), "err", "past the end of the text or of its 1023 bytes")
			return 0, syscall.EIO
		}
		text = text[:off] + p
		return len(p), nil
	}
	return f
}
