package netview_test

import (
	"strings"
	"testing"
	"time"

	"sockfs/netview"
	"sockfs/netview/mounttest"
)

func TestParseSkmem(t *testing.T) {
	m, err := netview.ParseSkmem("skmem:(r1,rb2,t3,tb4,f5,w6,o7,bl8,d9,zz10)\n")
	if err != nil {
		t.Fatal(err)
	}
	if m.R != 1 || m.RB != 2 || m.T != 3 || m.TB != 4 || m.F != 5 || m.W != 6 || m.O != 7 || m.BL != 8 || m.D != 9 || m.Extra["zz"] != 10 {
		t.Fatalf("got %+v", m)
	}
	if m.Text != "skmem:(r1,rb2,t3,tb4,f5,w6,o7,bl8,d9,zz10)" {
		t.Fatalf("text %q", m.Text)
	}
	for _, bad := range []string{"", "skmem:()", "skmem:(r1,rb2,t3,tb4,f5,w6,o7,bl8)", "skmem:(r1,r1,rb2,t3,tb4,f5,w6,o7,bl8,d9)",
		"skmem:(rx,rb2,t3,tb4,f5,w6,o7,bl8,d9)", "mem:(r1,rb2,t3,tb4,f5,w6,o7,bl8,d9)", "skmem:(r1,rb2,t3,tb4,f5,w6,o7,bl8,d9"} {
		if _, err := netview.ParseSkmem(bad); err == nil {
			t.Errorf("ParseSkmem(%q) accepted", bad)
		}
	}
}

func TestParseStatus(t *testing.T) {
	state, st, err := netview.ParseStatus("Established qin 5 qout 0 cwnd 10 newfield abc\n")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := st.Get("cwnd"); state != "Established" || !ok || v != 10 {
		t.Fatalf("state %q cwnd %d %v", state, v, ok)
	}
	if _, ok := st.Get("newfield"); ok || st.Values[3] != "abc" {
		t.Fatalf("unknown field not kept as text: %+v", st)
	}
	for _, bad := range []string{"", "Established qin", "Established qin x", "Established qin 1 qin 2", "Listen\nListen"} {
		if _, _, err := netview.ParseStatus(bad); err == nil {
			t.Errorf("ParseStatus(%q) accepted", bad)
		}
	}
}

func TestParseProtocolsNetstatSockstat(t *testing.T) {
	ps, err := netview.ParseProtocols("protocol  sockets   memory press      low pressure     high extra\n" +
		"TCP             3      120   yes   277449   369935   554898 7\nUDP 0 0 NI 1 2 3 8\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Memory != 120 || !ps[0].UnderPressure() || ps[0].PressAt != 369935 || ps[1].Pressure != "NI" || ps[0].Extra["extra"] != "7" {
		t.Fatalf("got %+v", ps)
	}
	if _, err := netview.ParseProtocols("protocol sockets memory press low high\nTCP 1 2 no 3 4\n"); err == nil {
		t.Error("missing pressure column accepted")
	}
	if _, err := netview.ParseProtocols("protocol sockets memory press low pressure high\nTCP 1 2 maybe 3 4 5\n"); err == nil {
		t.Error("bad pressure state accepted")
	}
	ns, err := netview.ParseNetstat("TcpExt: PruneCalled RcvPruned\nTcpExt: 4 5\nTcp: MaxConn\nTcp: -1\n")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := ns.Get("TcpExt", "RcvPruned"); v != 5 {
		t.Fatalf("netstat %v", ns)
	}
	if v, _ := ns.GetKey("Tcp.MaxConn"); v != -1 {
		t.Fatalf("netstat %v", ns)
	}
	for _, bad := range []string{"TcpExt: A B\nTcpExt: 1\n", "TcpExt: A\n", "TcpExt: A\nIpExt: 1\n", "TcpExt: A\nTcpExt: x\n"} {
		if _, err := netview.ParseNetstat(bad); err == nil {
			t.Errorf("ParseNetstat(%q) accepted", bad)
		}
	}
	ss, err := netview.ParseSockstat("sockets: used 5\nTCP: inuse 1 orphan 0 tw 0 alloc 1 mem 3\n")
	if err != nil || ss["TCP"]["mem"] != 3 || ss["sockets"]["used"] != 5 {
		t.Fatalf("sockstat %v %v", ss, err)
	}
	if _, err := netview.ParseSockstat("TCP: inuse\n"); err == nil {
		t.Error("bad sockstat accepted")
	}
}

// TestReadMount reads a real mount with a TCP connection made through the
// files and checks what netview sees against the files themselves.
func TestReadMount(t *testing.T) {
	p := mounttest.New(t)
	listener, server, client := p.TCP(t, 8080)
	if _, err := client.Write([]byte(strings.Repeat("x", 1000))); err != nil {
		t.Fatal(err)
	}
	if err := netview.CheckMount(p.A); err != nil {
		t.Fatal(err)
	}
	var snap *netview.Snapshot
	var srv netview.Conv
	deadline := time.Now().Add(5 * time.Second)
	for {
		var err error
		if snap, err = netview.Read(p.A); err != nil {
			t.Fatal(err)
		}
		for _, c := range snap.Convs {
			if c.Proto == "tcp" && c.N == server.N {
				srv = c
			}
		}
		if q, _ := srv.Field("qin"); q == 1000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if q, _ := srv.Field("qin"); q != 1000 || srv.State != "Established" {
		t.Fatalf("server conversation %+v", srv)
	}
	if srv.Local.String() != "198.18.0.1:8080" || srv.Remote.Host != "198.18.0.2" {
		t.Fatalf("addresses %v %v", srv.Local, srv.Remote)
	}
	if srv.Mem.R == 0 || srv.Mem.RB == 0 {
		t.Fatalf("mem %+v", srv.Mem)
	}
	var lst netview.Conv
	for _, c := range snap.Convs {
		if c.Proto == "tcp" && c.N == listener.N {
			lst = c
		}
	}
	if lst.State != "Listen" || lst.Local.Port != 8080 {
		t.Fatalf("listener %+v", lst)
	}
	tcp, ok := snap.Protocol("TCP")
	if !ok || tcp.Sockets < 2 || tcp.Memory < 0 || tcp.High <= tcp.PressAt || tcp.PressAt <= tcp.Low || tcp.Pressure != "no" {
		t.Fatalf("TCP protocol %+v", tcp)
	}
	if v, ok := snap.Netstat.Get("Tcp", "PassiveOpens"); !ok || v != 1 {
		t.Fatalf("Tcp PassiveOpens %d %v", v, ok)
	}
	if _, ok := snap.Netstat.Get("TcpExt", "PruneCalled"); !ok {
		t.Fatal("no TcpExt PruneCalled")
	}
	if snap.Sockstat["TCP"]["inuse"] < 2 {
		t.Fatalf("sockstat %v", snap.Sockstat)
	}
	ifcs, err := netview.ReadIfcs(p.A)
	if err != nil || len(ifcs) != 1 || ifcs[0].Device == "" || ifcs[0].Stats["rx_bytes"] < 1000 {
		t.Fatalf("ipifc %+v %v", ifcs, err)
	}
}
