package tun

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// rtnl is a minimal rtnetlink client: just the requests this package needs
// to look a link up, set its MTU and IFF_UP, and add an IPv4 address, each
// sent with NLM_F_ACK and answered by the kernel's NLMSG_ERROR (0 = done).
//
// A netlink socket belongs to the network namespace of the thread that
// creates it, so dialRtnl must run on the thread that created the TUN.
type rtnl struct {
	fd  int
	seq uint32
	buf []byte // receive buffer
}

func dialRtnl() (*rtnl, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	return &rtnl{fd: fd, buf: make([]byte, 32<<10)}, nil
}

func (c *rtnl) Close() error { return unix.Close(c.fd) }

// nlmsg builds one netlink message: header, a fixed family struct, then
// attributes, each padded to NLMSG_ALIGNTO (4).
type nlmsg []byte

func newNlmsg(typ, flags uint16, fixed []byte) nlmsg {
	m := make(nlmsg, unix.SizeofNlMsghdr, 128)
	binary.NativeEndian.PutUint16(m[4:6], typ)
	binary.NativeEndian.PutUint16(m[6:8], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	return m.put(fixed)
}

func (m nlmsg) put(p []byte) nlmsg {
	m = append(m, p...)
	for len(m)%unix.NLMSG_ALIGNTO != 0 {
		m = append(m, 0)
	}
	return m
}

// attr appends an rtattr (struct rtattr: len, type, then the value).
func (m nlmsg) attr(typ uint16, val []byte) nlmsg {
	var h [unix.SizeofRtAttr]byte
	binary.NativeEndian.PutUint16(h[0:2], uint16(unix.SizeofRtAttr+len(val)))
	binary.NativeEndian.PutUint16(h[2:4], typ)
	return m.put(h[:]).put(val)
}

func (m nlmsg) attrU32(typ uint16, v uint32) nlmsg {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	return m.attr(typ, b[:])
}

// do sends m and reads replies until the kernel's acknowledgement of it.
// Each message other than the acknowledgement is passed to onMsg (nil to
// ignore). The returned error is the kernel's errno for the request.
func (c *rtnl) do(m nlmsg, onMsg func(typ uint16, body []byte)) error {
	c.seq++
	binary.NativeEndian.PutUint32(m[0:4], uint32(len(m)))
	binary.NativeEndian.PutUint32(m[8:12], c.seq)
	if err := unix.Sendto(c.fd, m, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	for {
		n, _, err := unix.Recvfrom(c.fd, c.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		for b := c.buf[:n]; len(b) >= unix.SizeofNlMsghdr; {
			l := int(binary.NativeEndian.Uint32(b[0:4]))
			if l < unix.SizeofNlMsghdr || l > len(b) {
				return fmt.Errorf("netlink: malformed reply")
			}
			typ := binary.NativeEndian.Uint16(b[4:6])
			seq := binary.NativeEndian.Uint32(b[8:12])
			body := b[unix.SizeofNlMsghdr:l]
			b = b[min(nlAlign(l), len(b)):]
			if seq != c.seq {
				continue // a stale reply to an earlier request
			}
			switch typ {
			case unix.NLMSG_ERROR:
				if len(body) < 4 {
					return fmt.Errorf("netlink: short error message")
				}
				if e := int32(binary.NativeEndian.Uint32(body[0:4])); e != 0 {
					return unix.Errno(-e)
				}
				return nil
			case unix.NLMSG_DONE:
				return nil
			default:
				if onMsg != nil {
					onMsg(typ, body)
				}
			}
		}
	}
}

func nlAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// linkInfo is what RTM_GETLINK tells about one interface.
type linkInfo struct {
	Index int
	Flags uint32 // IFF_UP, IFF_RUNNING, ...
	MTU   int
}

// linkByName looks an interface up by name (RTM_GETLINK with IFLA_IFNAME).
// The error is ENODEV when there is no such interface.
func (c *rtnl) linkByName(name string) (linkInfo, error) {
	var ifi [unix.SizeofIfInfomsg]byte
	m := newNlmsg(unix.RTM_GETLINK, 0, ifi[:]).attr(unix.IFLA_IFNAME, append([]byte(name), 0))
	var li linkInfo
	found := false
	err := c.do(m, func(typ uint16, body []byte) {
		if typ != unix.RTM_NEWLINK || len(body) < unix.SizeofIfInfomsg {
			return
		}
		found = true
		li.Index = int(int32(binary.NativeEndian.Uint32(body[4:8])))
		li.Flags = binary.NativeEndian.Uint32(body[8:12])
		forAttrs(body[unix.SizeofIfInfomsg:], func(typ uint16, val []byte) {
			if typ == unix.IFLA_MTU && len(val) >= 4 {
				li.MTU = int(binary.NativeEndian.Uint32(val))
			}
		})
	})
	if err == nil && !found {
		err = unix.ENODEV
	}
	return li, err
}

// forAttrs calls f for each rtattr in b.
func forAttrs(b []byte, f func(typ uint16, val []byte)) {
	for len(b) >= unix.SizeofRtAttr {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if l < unix.SizeofRtAttr || l > len(b) {
			return
		}
		f(binary.NativeEndian.Uint16(b[2:4]), b[unix.SizeofRtAttr:l])
		b = b[min(nlAlign(l), len(b)):]
	}
}

// setLink sets the MTU of interface index and brings it up (RTM_NEWLINK on
// an existing link: ifi_change selects the flags to change, IFLA_MTU the
// MTU), as `ip link set dev X mtu N up` does.
func (c *rtnl) setLink(index, mtu int) error {
	var ifi [unix.SizeofIfInfomsg]byte
	ifi[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(ifi[4:8], uint32(index))
	binary.NativeEndian.PutUint32(ifi[8:12], unix.IFF_UP)  // ifi_flags
	binary.NativeEndian.PutUint32(ifi[12:16], unix.IFF_UP) // ifi_change
	return c.do(newNlmsg(unix.RTM_NEWLINK, 0, ifi[:]).attrU32(unix.IFLA_MTU, uint32(mtu)), nil)
}

// addAddr adds the IPv4 address p to interface index (RTM_NEWADDR), with
// the prefix's broadcast address for prefixes shorter than /31, as
// `ip addr add P brd + dev X` does. The kernel adds the prefix route.
func (c *rtnl) addAddr(index int, p netip.Prefix) error {
	var ifa [unix.SizeofIfAddrmsg]byte
	ifa[0] = unix.AF_INET
	ifa[1] = byte(p.Bits())
	ifa[3] = unix.RT_SCOPE_UNIVERSE
	binary.NativeEndian.PutUint32(ifa[4:8], uint32(index))
	a := p.Addr().As4()
	m := newNlmsg(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, ifa[:]).
		attr(unix.IFA_LOCAL, a[:]).
		attr(unix.IFA_ADDRESS, a[:])
	if p.Bits() < 31 {
		host := ^uint32(0) >> p.Bits()
		var brd [4]byte
		binary.BigEndian.PutUint32(brd[:], binary.BigEndian.Uint32(a[:])|host)
		m = m.attr(unix.IFA_BROADCAST, brd[:])
	}
	return c.do(m, nil)
}

// addAddr6 adds the IPv6 address p to interface index (RTM_NEWADDR) with
// IFA_F_NODAD, as `ip addr add P dev X nodad` does: on a point-to-point
// TUN there is nobody to collide with, and the address is usable at once
// rather than after DAD's second. The kernel adds the prefix route.
func (c *rtnl) addAddr6(index int, p netip.Prefix) error {
	var ifa [unix.SizeofIfAddrmsg]byte
	ifa[0] = unix.AF_INET6
	ifa[1] = byte(p.Bits())
	ifa[2] = unix.IFA_F_NODAD
	ifa[3] = unix.RT_SCOPE_UNIVERSE
	binary.NativeEndian.PutUint32(ifa[4:8], uint32(index))
	a := p.Addr().As16()
	m := newNlmsg(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, ifa[:]).
		attr(unix.IFA_LOCAL, a[:]).
		attr(unix.IFA_ADDRESS, a[:])
	return c.do(m, nil)
}

// ipv4Addrs lists the IPv4 addresses of interface index (RTM_GETADDR dump).
func (c *rtnl) ipv4Addrs(index int) ([]netip.Prefix, error) {
	var ifa [unix.SizeofIfAddrmsg]byte
	ifa[0] = unix.AF_INET
	var out []netip.Prefix
	err := c.do(newNlmsg(unix.RTM_GETADDR, unix.NLM_F_DUMP, ifa[:]), func(typ uint16, body []byte) {
		if typ != unix.RTM_NEWADDR || len(body) < unix.SizeofIfAddrmsg {
			return
		}
		if int(binary.NativeEndian.Uint32(body[4:8])) != index {
			return
		}
		bits := int(body[1])
		forAttrs(body[unix.SizeofIfAddrmsg:], func(typ uint16, val []byte) {
			if typ == unix.IFA_LOCAL && len(val) == 4 {
				out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte(val)), bits))
			}
		})
	})
	return out, err
}
