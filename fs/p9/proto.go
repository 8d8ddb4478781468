package p9

import (
	"encoding/binary"
	"errors"
	"strings"
)

// Message types of the three dialects: 9P2000 (intro(5)), the 9P2000.u
// additions (same numbers, longer fields) and 9P2000.L's own (Linux
// include/net/9p/9p.h, diod's protocol.md).
const (
	// 9P2000.L only.
	msgRlerror     = 7
	msgTstatfs     = 8
	msgRstatfs     = 9
	msgTlopen      = 12
	msgRlopen      = 13
	msgTlcreate    = 14
	msgTsymlink    = 16
	msgTmknod      = 18
	msgTrename     = 20
	msgTreadlink   = 22
	msgTgetattr    = 24
	msgRgetattr    = 25
	msgTsetattr    = 26
	msgRsetattr    = 27
	msgTxattrwalk  = 30
	msgTxattrcreat = 32
	msgTreaddir    = 40
	msgRreaddir    = 41
	msgTfsync      = 50
	msgRfsync      = 51
	msgTlock       = 52
	msgRlock       = 53
	msgTgetlock    = 54
	msgRgetlock    = 55
	msgTlink       = 70
	msgTmkdir      = 72
	msgTrenameat   = 74
	msgTunlinkat   = 76

	// 9P2000 (and .u; .L uses the ones marked).
	msgTversion = 100 // all
	msgRversion = 101
	msgTauth    = 102 // all
	msgRauth    = 103
	msgTattach  = 104 // all
	msgRattach  = 105
	msgRerror   = 107
	msgTflush   = 108 // all
	msgRflush   = 109
	msgTwalk    = 110 // all
	msgRwalk    = 111
	msgTopen    = 112
	msgRopen    = 113
	msgTcreate  = 114
	msgTread    = 116 // all
	msgRread    = 117
	msgTwrite   = 118 // all
	msgRwrite   = 119
	msgTclunk   = 120 // all
	msgRclunk   = 121
	msgTremove  = 122 // all
	msgRremove  = 123
	msgTstat    = 124
	msgRstat    = 125
	msgTwstat   = 126
	msgRwstat   = 127
)

const (
	hdrLen = 7      // size[4] type[1] tag[2]
	noTag  = 0xFFFF // the tag of Tversion
	noFid  = ^uint32(0)
	noUID  = ^uint32(0)
	// nobody is the identity given to an attach that names no user the
	// server knows: anonymous clients get no more than other users'
	// rights.
	nobody = 65534
	// ioHdr is the fixed part of Rread and Twrite (header, fid, offset,
	// count): a Tread's count is capped at msize minus this, as Plan 9's
	// IOHDRSZ.
	ioHdr = 24
	// minMsize is the smallest msize agreed to (lib9p's limit): below it
	// not even a stat fits.
	minMsize = 256
	// maxWelem is the most names one Twalk may carry (MAXWELEM).
	maxWelem = 16
)

// Plan 9 open modes (Topen) and permission bits (stat).
const (
	oREAD   = 0
	oWRITE  = 1
	oRDWR   = 2
	oEXEC   = 3
	oTRUNC  = 0x10
	oRCLOSE = 0x40
	dmDir   = 0x80000000
)

// dialect is the protocol version agreed by Tversion.
type dialect uint8

const (
	dialectNone dialect = iota // no Tversion yet (or "unknown" answered)
	dialect9P                  // 9P2000
	dialectU                   // 9P2000.u
	dialectL                   // 9P2000.L
)

func (d dialect) String() string {
	switch d {
	case dialect9P:
		return "9P2000"
	case dialectU:
		return "9P2000.u"
	case dialectL:
		return "9P2000.L"
	}
	return "unknown"
}

// parseVersion picks the dialect for a client's Tversion string, as
// version(5) says: a string that starts with "9P2000" but names an
// unknown variant gets plain 9P2000; anything else is unknown. gVisor's
// "9P2000.L.Google.N" (hugelgupf/p9's client) is 9P2000.L, which that
// client takes as its version 0.
func parseVersion(v string) dialect {
	switch {
	case strings.HasPrefix(v, "9P2000.L"):
		return dialectL
	case v == "9P2000.u":
		return dialectU
	case v == "9P2000", strings.HasPrefix(v, "9P2000."):
		return dialect9P
	}
	return dialectNone
}

var le = binary.LittleEndian

// errShort is a message too short for its fields.
var errShort = errors.New("9p: message too short")

// dec reads the fields of one message body in order. The first field that
// does not fit sets err; every later read returns zero values, so a
// handler reads all its fields and checks err once (smoltcp's check_len
// idea, per field).
type dec struct {
	b   []byte
	err error
}

func (d *dec) take(n int) []byte {
	if d.err != nil || n < 0 || n > len(d.b) {
		d.err = errShort
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *dec) u8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *dec) u16() uint16 {
	if p := d.take(2); p != nil {
		return le.Uint16(p)
	}
	return 0
}

func (d *dec) u32() uint32 {
	if p := d.take(4); p != nil {
		return le.Uint32(p)
	}
	return 0
}

func (d *dec) u64() uint64 {
	if p := d.take(8); p != nil {
		return le.Uint64(p)
	}
	return 0
}

func (d *dec) str() string {
	n := d.u16()
	return string(d.take(int(n)))
}

func (d *dec) qid() qid {
	return qid{typ: d.u8(), version: d.u32(), path: d.u64()}
}

// qid is a 9P qid: type[1] version[4] path[8].
type qid struct {
	typ     uint8
	version uint32
	path    uint64
}

const qidLen = 13

// enc builds one message. start writes the header with a placeholder size
// that finish fills in.
type enc struct{ b []byte }

func (e *enc) start(typ uint8, tag uint16) {
	e.b = append(e.b[:0], 0, 0, 0, 0, typ, byte(tag), byte(tag>>8))
}

func (e *enc) finish() []byte {
	le.PutUint32(e.b[0:4], uint32(len(e.b)))
	return e.b
}

func (e *enc) u8(v uint8)   { e.b = append(e.b, v) }
func (e *enc) u16(v uint16) { e.b = le.AppendUint16(e.b, v) }
func (e *enc) u32(v uint32) { e.b = le.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64) { e.b = le.AppendUint64(e.b, v) }
func (e *enc) str(s string) {
	if len(s) > 0xFFFF {
		s = s[:0xFFFF]
	}
	e.u16(uint16(len(s)))
	e.b = append(e.b, s...)
}
func (e *enc) qid(q qid) { e.u8(q.typ); e.u32(q.version); e.u64(q.path) }
