package memctl

import (
	"strconv"
	"strings"
	"sync/atomic"
)

// MIB is a set of SNMP/netstat counters (Linux's net->mib), one atomic
// counter per Counter constant. Inc and Add are a single atomic add and
// allocate nothing, so they can be bumped from hot paths. Safe for concurrent
// use.
type MIB struct {
	v [counterCount]atomic.Uint64
}

// NewMIB returns counters at zero except the constant Tcp fields Linux sets at
// init (tcp_mib_init: RtoAlgorithm 1, RtoMin 200, RtoMax 120000, MaxConn -1).
func NewMIB() *MIB {
	m := &MIB{}
	m.v[TcpRtoAlgorithm].Store(1)
	m.v[TcpRtoMin].Store(200)
	m.v[TcpRtoMax].Store(120000)
	m.v[TcpMaxConn].Store(^uint64(0)) // -1, printed signed
	return m
}

// Inc adds 1 to c. Mirrors NET_INC_STATS / __NET_INC_STATS and friends.
func (m *MIB) Inc(c Counter) { m.v[c].Add(1) }

// Add adds n to c. Mirrors NET_ADD_STATS.
func (m *MIB) Add(c Counter, n uint64) { m.v[c].Add(n) }

// Dec subtracts 1 from c (for gauges such as TcpCurrEstab). Mirrors
// TCP_DEC_STATS.
func (m *MIB) Dec(c Counter) { m.v[c].Add(^uint64(0)) }

// Get returns the value of c.
func (m *MIB) Get(c Counter) uint64 { return m.v[c].Load() }

// Name returns the counter's column name ("TCPMemoryPressures") and group
// ("TcpExt").
func (c Counter) Name() (group, name string) {
	for _, g := range mibGroups {
		if c >= g.first && c <= g.last {
			return g.name, counterNames[c]
		}
	}
	return "", ""
}

// String returns the nstat-style name, such as "TcpExtTCPMemoryPressures".
func (c Counter) String() string {
	g, n := c.Name()
	return g + n
}

// CounterByName finds a counter by its nstat-style name
// ("UdpRcvbufErrors").
func CounterByName(s string) (Counter, bool) {
	for c := Counter(0); c < counterCount; c++ {
		if c.String() == s {
			return c, true
		}
	}
	return 0, false
}

// group returns the group with the given name.
func group(name string) mibGroup {
	for _, g := range mibGroups {
		if g.name == name {
			return g
		}
	}
	panic("memctl: no MIB group " + name)
}

// writeGroup prints the two lines "Name: col col ..." / "Name: v v ...".
// prefix and prefixVals are extra leading columns (Ip's Forwarding and
// DefaultTTL).
func (m *MIB) writeGroup(b *strings.Builder, g mibGroup, prefix []string, prefixVals []string) {
	b.WriteString(g.name)
	b.WriteByte(':')
	for _, p := range prefix {
		b.WriteByte(' ')
		b.WriteString(p)
	}
	for c := g.first; c <= g.last; c++ {
		if !absentCounters[c] {
			b.WriteByte(' ')
			b.WriteString(counterNames[c])
		}
	}
	b.WriteByte('\n')
	b.WriteString(g.name)
	b.WriteByte(':')
	for _, p := range prefixVals {
		b.WriteByte(' ')
		b.WriteString(p)
	}
	for c := g.first; c <= g.last; c++ {
		if absentCounters[c] {
			continue
		}
		b.WriteByte(' ')
		if c == TcpMaxConn {
			b.WriteString(strconv.FormatInt(int64(m.Get(c)), 10)) // signed, RFC 2012
		} else {
			b.WriteString(strconv.FormatUint(m.Get(c), 10))
		}
	}
	b.WriteByte('\n')
}

// absentCounters are the counters of Linux's files for mechanisms sockfs
// does not have, so nothing can ever move them; they are left out of the
// output (tools such as nstat read the columns by name).
var absentCounters = map[Counter]bool{
	IpForwDatagrams: true, // a host: no forwarding
	// TCP-MD5, TCP-AO, Fast Open, busy polling, pfmemalloc, IP_MINTTL,
	// TCP_DEFER_ACCEPT, arp_filter, rp_filter, SO_REUSEPORT request
	// migration, PLB and txhash rehashing, path-MTU probing, autocorking
	// and TSQ's host queues: none exists in sockfs.
	TcpExtTCPMD5NotFound: true, TcpExtTCPMD5Unexpected: true, TcpExtTCPMD5Failure: true,
	TcpExtTCPAORequired: true, TcpExtTCPAOBad: true, TcpExtTCPAOKeyNotFound: true, TcpExtTCPAOGood: true,
	TcpExtTCPAODroppedIcmps: true, TcpExtTCPFastOpenActive: true, TcpExtTCPFastOpenActiveFail: true,
	TcpExtTCPFastOpenPassive: true, TcpExtTCPFastOpenPassiveFail: true, TcpExtTCPFastOpenListenOverflow: true,
	TcpExtTCPFastOpenCookieReqd: true, TcpExtTCPFastOpenBlackhole: true, TcpExtTCPFastOpenPassiveAltKey: true,
	TcpExtBusyPollRxPackets: true, TcpExtPFMemallocDrop: true, TcpExtTCPMinTTLDrop: true,
	TcpExtTCPDeferAcceptDrop: true, TcpExtArpFilter: true, TcpExtIPReversePathFilter: true,
	TcpExtTCPMigrateReqSuccess: true, TcpExtTCPMigrateReqFailure: true, TcpExtTCPPLBRehash: true,
	TcpExtTcpTimeoutRehash: true, TcpExtTcpDuplicateDataRehash: true, TcpExtTCPMTUPFail: true,
	TcpExtTCPMTUPSuccess: true, TcpExtTCPAutoCorking: true, TcpExtTCPSpuriousRtxHostQueues: true,
	// No multicast, and nothing sent to a broadcast address.
	IpExtInMcastPkts: true, IpExtOutMcastPkts: true, IpExtInMcastOctets: true, IpExtOutMcastOctets: true,
	IpExtOutBcastPkts: true, IpExtOutBcastOctets: true,
}

// icmpTypes maps the per-type Icmp columns to ICMP type numbers, for the
// IcmpMsg lines.
var icmpTypes = [...]struct {
	in, out Counter
	typ     int
}{
	{IcmpInEchoReps, IcmpOutEchoReps, 0},
	{IcmpInDestUnreachs, IcmpOutDestUnreachs, 3},
	{IcmpInSrcQuenchs, IcmpOutSrcQuenchs, 4},
	{IcmpInRedirects, IcmpOutRedirects, 5},
	{IcmpInEchos, IcmpOutEchos, 8},
	{IcmpInTimeExcds, IcmpOutTimeExcds, 11},
	{IcmpInParmProbs, IcmpOutParmProbs, 12},
	{IcmpInTimestamps, IcmpOutTimestamps, 13},
	{IcmpInTimestampReps, IcmpOutTimestampReps, 14},
	{IcmpInAddrMasks, IcmpOutAddrMasks, 17},
	{IcmpInAddrMaskReps, IcmpOutAddrMaskReps, 18},
}

// FormatSNMP returns the text of /proc/net/snmp: pairs of lines for Ip, Icmp,
// IcmpMsg (only the non-zero per-type counters, at most 16 a pair, and no
// pair when all are zero), Tcp and Udp, without absentCounters. forwarding and defaultTTL
// are the Ip columns that are settings, not counters. Mirrors snmp_seq_show
// (net/ipv4/proc.c). Deviation: IcmpMsg covers only the ICMP types that have
// their own Icmp column.
func (m *MIB) FormatSNMP(forwarding bool, defaultTTL int) string {
	var b strings.Builder
	fw := "2"
	if forwarding {
		fw = "1"
	}
	m.writeGroup(&b, group("Ip"), []string{"Forwarding", "DefaultTTL"}, []string{fw, strconv.Itoa(defaultTTL)})
	m.writeGroup(&b, group("Icmp"), nil, nil)
	// IcmpMsg: In types first, then Out types, in type order; 16 per pair.
	type tv struct {
		name string
		v    uint64
	}
	var msgs []tv
	for _, t := range icmpTypes {
		if v := m.Get(t.in); v != 0 {
			msgs = append(msgs, tv{"InType" + strconv.Itoa(t.typ), v})
		}
	}
	for _, t := range icmpTypes {
		if v := m.Get(t.out); v != 0 {
			msgs = append(msgs, tv{"OutType" + strconv.Itoa(t.typ), v})
		}
	}
	for len(msgs) > 0 {
		n := min(16, len(msgs))
		b.WriteString("IcmpMsg:")
		for _, x := range msgs[:n] {
			b.WriteString(" " + x.name)
		}
		b.WriteString("\nIcmpMsg:")
		for _, x := range msgs[:n] {
			b.WriteString(" " + strconv.FormatUint(x.v, 10))
		}
		b.WriteByte('\n')
		msgs = msgs[n:]
	}
	m.writeGroup(&b, group("Tcp"), nil, nil)
	m.writeGroup(&b, group("Udp"), nil, nil)
	// No UdpLite pair: sockfs has no UDP-Lite.
	return b.String()
}

// FormatNetstat returns the text of /proc/net/netstat: the TcpExt and IpExt
// pairs of lines. Mirrors netstat_seq_show (net/ipv4/proc.c); the MPTcpExt
// pair (CONFIG_MPTCP) is not printed since sockfs has no MPTCP.
func (m *MIB) FormatNetstat() string {
	var b strings.Builder
	m.writeGroup(&b, group("TcpExt"), nil, nil)
	m.writeGroup(&b, group("IpExt"), nil, nil)
	return b.String()
}

// SockstatInfo holds the inputs of /proc/net/sockstat other than the
// protocol pools' page counts.
type SockstatInfo struct {
	SocketsUsed  int   // sockets: used
	TCPInuse     int   // TCP: inuse (hashed IPv4 TCP sockets)
	TCPOrphan    int   // TCP: orphan
	TCPTw        int   // TCP: tw
	TCPAlloc     int64 // TCP: alloc (sockets_allocated)
	TCPMem       int64 // TCP: mem (pages)
	UDPInuse     int   // UDP: inuse
	UDPMem       int64 // UDP: mem (pages)
	UDPLiteInuse int   // UDPLITE: inuse
	RawInuse     int   // RAW: inuse
	FragInuse    int   // FRAG: inuse
	FragMemory   int64 // FRAG: memory (bytes)
}

// FormatSockstat returns the text of /proc/net/sockstat for the given values.
// Mirrors sockstat_seq_show (net/ipv4/proc.c) and socket_seq_show.
func FormatSockstat(s SockstatInfo) string {
	var b strings.Builder
	b.WriteString("sockets: used " + strconv.Itoa(s.SocketsUsed) + "\n")
	b.WriteString("TCP: inuse " + strconv.Itoa(s.TCPInuse) + " orphan " + strconv.Itoa(s.TCPOrphan) +
		" tw " + strconv.Itoa(s.TCPTw) + " alloc " + strconv.FormatInt(s.TCPAlloc, 10) +
		" mem " + strconv.FormatInt(s.TCPMem, 10) + "\n")
	b.WriteString("UDP: inuse " + strconv.Itoa(s.UDPInuse) + " mem " + strconv.FormatInt(s.UDPMem, 10) + "\n")
	b.WriteString("UDPLITE: inuse " + strconv.Itoa(s.UDPLiteInuse) + "\n")
	b.WriteString("RAW: inuse " + strconv.Itoa(s.RawInuse) + "\n")
	b.WriteString("FRAG: inuse " + strconv.Itoa(s.FragInuse) + " memory " + strconv.FormatInt(s.FragMemory, 10) + "\n")
	return b.String()
}

// Sockstat fills the pool-derived fields of s (TCP alloc, orphan, tw and
// mem, UDP mem: the global counters only, as Linux reads them) and formats
// it.
func (n *Net) Sockstat(s SockstatInfo) string {
	s.TCPAlloc = n.TCP.SocketsAllocated()
	s.TCPOrphan = int(n.TCP.OrphanCount())
	s.TCPTw = int(n.TCP.TwCount())
	s.TCPMem = n.TCP.MemoryAllocated()
	s.UDPMem = n.UDP.MemoryAllocated()
	return FormatSockstat(s)
}

// icmp6Types are the ICMPv6 type numbers of the named per-type Icmp6
// columns, in the order of the In (and Out) columns.
var icmp6Types = [...]uint8{1, 2, 3, 4, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 143}

// FormatSNMP6 returns the text of /proc/net/snmp6: one "name value" line
// per counter, the Ip6, Icmp6 and Udp6 groups, then the Icmp6InTypeN and
// Icmp6OutTypeN lines of the types that moved. Mirrors snmp6_seq_show
// (net/ipv6/proc.c). Deviation: per-type counts exist only for the named
// types, so the TypeN lines cover those only; there is no UdpLite6 group
// (sockfs has no UDP-Lite).
func (m *MIB) FormatSNMP6() string {
	var b strings.Builder
	line := func(name string, v uint64) {
		b.WriteString(name)
		for i := len(name); i < 32; i++ {
			b.WriteByte(' ')
		}
		b.WriteByte('\t')
		b.WriteString(strconv.FormatUint(v, 10))
		b.WriteByte('\n')
	}
	for _, g := range []string{"Ip6", "Icmp6", "Udp6"} {
		gr := group(g)
		for c := gr.first; c <= gr.last; c++ {
			line(c.String(), m.Get(c))
		}
		if g != "Icmp6" {
			continue
		}
		for dir, first := range [2]Counter{Icmp6InDestUnreachs, Icmp6OutDestUnreachs} {
			for i, t := range icmp6Types {
				if v := m.Get(first + Counter(i)); v != 0 {
					line("Icmp6"+[2]string{"In", "Out"}[dir]+"Type"+strconv.Itoa(int(t)), v)
				}
			}
		}
	}
	return b.String()
}

// FormatSNMP6Pairs returns the Ip6, Icmp6 and Udp6 groups as pairs of
// lines "Group: names" / "Group: values", the layout of /proc/net/snmp, for
// the netstat file (which holds snmp's and netstat's groups together, and
// whose readers parse pairs); the snmp6 file has Linux's own layout.
func (m *MIB) FormatSNMP6Pairs() string {
	var b strings.Builder
	for _, g := range []string{"Ip6", "Icmp6", "Udp6"} {
		m.writeGroup(&b, group(g), nil, nil)
	}
	return b.String()
}

// Icmp6TypeCounter returns the In (out false) or Out counter of ICMPv6
// type typ, and false for a type without one. Mirrors ICMP6MSG_INC_STATS.
func Icmp6TypeCounter(typ uint8, out bool) (Counter, bool) {
	for i, t := range icmp6Types {
		if t == typ {
			if out {
				return Icmp6OutDestUnreachs + Counter(i), true
			}
			return Icmp6InDestUnreachs + Counter(i), true
		}
	}
	return 0, false
}
