package memctl

import (
	"strings"
	"testing"
)

func TestMIBFormats(t *testing.T) {
	m := NewMIB()
	m.Inc(TcpExtTCPMemoryPressures)
	m.Add(TcpExtTCPMemoryPressuresChrono, 1500)
	m.Inc(UdpRcvbufErrors)
	m.Inc(TcpCurrEstab)
	m.Inc(TcpCurrEstab)
	m.Dec(TcpCurrEstab)
	m.Inc(IcmpInEchos)
	m.Inc(IcmpOutEchoReps)
	ns := m.FormatNetstat()
	lines := strings.Split(strings.TrimSuffix(ns, "\n"), "\n")
	eq(t, "netstat lines", len(lines), 4)
	names, vals := strings.Fields(lines[0]), strings.Fields(lines[1])
	eq(t, "prefix", names[0], "TcpExt:")
	eq(t, "columns", len(names), len(vals))
	for i, nm := range names {
		if nm == "TCPMemoryPressures" {
			eq(t, "value", vals[i], "1")
		}
		if nm == "TCPMemoryPressuresChrono" {
			eq(t, "chrono", vals[i], "1500")
		}
	}
	if !strings.HasPrefix(lines[0], "TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed EmbryonicRsts PruneCalled") {
		t.Errorf("TcpExt header %q", lines[0][:80])
	}
	eq(t, "IpExt", strings.HasPrefix(lines[2], "IpExt: InNoRoutes"), true)
	for _, absent := range []string{" TCPMD5NotFound ", " TCPFastOpenActive ", " InMcastPkts ", " TCPAOGood "} {
		if strings.Contains(ns, absent) {
			t.Errorf("netstat prints %q, which sockfs can never move", absent)
		}
	}
	snmp := m.FormatSNMP(false, 64)
	for _, want := range []string{
		"Ip: Forwarding DefaultTTL InReceives InHdrErrors",
		"\nIp: 2 64 0 0 ",
		"\nIcmp: InMsgs InErrors InCsumErrors InDestUnreachs",
		"\nIcmpMsg: InType8 OutType0\nIcmpMsg: 1 1\n",
		"\nTcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\nTcp: 1 200 120000 -1 0 0 0 0 1 0 0 0 0 0 0\n",
		"\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\nUdp: 0 0 0 0 1 0 0 0 0\n",
	} {
		if !strings.Contains(snmp, want) {
			t.Errorf("snmp lacks %q:\n%s", want, snmp)
		}
	}
	c, ok := CounterByName("TcpExtTCPRcvQDrop")
	eq(t, "by name", ok && c == TcpExtTCPRcvQDrop, true)
	eq(t, "String", UdpMemErrors.String(), "UdpMemErrors")
}

func TestSockstatFormat(t *testing.T) {
	n := newTestNet(t, Options{MemPcpuRsv: 1})
	sk := newTCPSock(n)
	sk.ForcedMemSchedule(3 * 4096)
	got := n.Sockstat(SockstatInfo{SocketsUsed: 5, TCPInuse: 1, UDPInuse: 2})
	want := "sockets: used 5\nTCP: inuse 1 orphan 0 tw 0 alloc 1 mem 3\nUDP: inuse 2 mem 0\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n"
	eq(t, "sockstat", got, want)
}

func TestWaitQueueNoLostWakeup(t *testing.T) {
	var q WaitQueue
	q.Wake() // nobody waits: nothing happens
	w := q.Prepare()
	q.Wake()
	<-w.C()
	q.Finish(w)
	eq(t, "sleepers", q.HasSleepers(), false)
}

func BenchmarkCounterInc(b *testing.B) {
	m := NewMIB()
	b.ReportAllocs()
	for b.Loop() {
		m.Inc(TcpExtTCPOFOQueue)
	}
}

func BenchmarkMemScheduleUncharge(b *testing.B) {
	n := newTestNet(b, Options{})
	sk := newTCPSock(n)
	b.ReportAllocs()
	for b.Loop() {
		if sk.WmemSchedule(1500) {
			sk.SkbEntail(1500)
			sk.WmemFreeSkb(1500)
		}
	}
	if sk.ForwardAlloc() != 0 {
		b.Fatal("leak")
	}
}

func BenchmarkSetOwnerRFree(b *testing.B) {
	n := newTestNet(b, Options{})
	sk := newTCPSock(n)
	buf := &testBuf{ts: 832}
	b.ReportAllocs()
	for b.Loop() {
		sk.RmemSchedule(832)
		SetOwnerR(buf, sk)
		buf.Free()
	}
}

func BenchmarkSysctlRead(b *testing.B) {
	n := newTestNet(b, Options{})
	b.ReportAllocs()
	for b.Loop() {
		_ = n.TCP.MemLimit(2)
	}
}
