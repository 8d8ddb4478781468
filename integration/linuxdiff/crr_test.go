package linuxdiff

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// Connection set-up and tear-down, as `make bench`'s connection rate row
// does them: the system connects to a kernel peer crrConns times, sends
// one byte, reads the peer's one-byte answer and closes first; then the
// same with the peer connecting and the system answering and closing
// second. Per connection the counters show the handshake, the ACK of
// each byte (delayed, or riding on the answer or the FIN) and the close:
// segments each way, TIME_WAIT on the side that closed first.
const crrConns = 50

func TestLinuxDiffConnectRequestClose(t *testing.T) {
	k, s := startBoth(t, nil)
	compareRoles(t, k, s, []counterRole{
		{"connects", connectAskClose, "the system connects 50 times, sends 1 byte, reads 1 and closes first"},
		{"accepts", acceptAnswerClose, "the kernel peer connects 50 times, sends 1 byte, reads 1 and closes first; the system answers and closes after"},
	}, crrRatios, nil)
}

var crrRatios = []counterRatio{
	{"Tcp:OutSegs", "Tcp:InSegs", 0.1, "segments sent per segment received over whole connections"},
	{"TcpExt:TCPOrigDataSent", "Tcp:OutSegs", 0.05,
		"new skbs sent from the write queue, the data and the FIN, not the SYN (tcp_event_new_data_sent)"},
}

// connectAskClose: the peer answers one byte with one byte and closes
// after the system does.
func connectAskClose(t *testing.T, side sut) map[string]int64 {
	t.Helper()
	port, peerDone := peerServeN(t, side, crrConns, 10*time.Second, func(c net.Conn) error {
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil {
			return err
		}
		if _, err := c.Write(b); err != nil {
			return err
		}
		_, err := c.Read(b) // the system's FIN
		if errors.Is(err, io.EOF) {
			err = nil
		}
		return err
	})
	before, err := side.mib()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < crrConns; i++ {
		c, err := side.tcpDial(port)
		if err != nil {
			t.Fatalf("%s: connect %d: %v", side.name(), i, err)
		}
		writeAll(t, side, c, []byte{1})
		readN(t, side, c, 1)
		c.Close()
	}
	if err := <-peerDone; err != nil {
		t.Fatalf("%s: peer: %v", side.name(), err)
	}
	return rrSettled(t, side, before)
}

// acceptAnswerClose: the peer connects, sends one byte, reads the answer
// and closes; the system closes after the peer's FIN.
func acceptAnswerClose(t *testing.T, side sut) map[string]int64 {
	t.Helper()
	l, port, before := listenCounted(t, side)
	defer l.Close()
	peerDone := make(chan error, 1)
	go func() {
		b := make([]byte, 1)
		for i := 0; i < crrConns; i++ {
			c, err := peerDial(side.peer(), port)
			if err == nil {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err = c.Write(b); err == nil {
					_, err = io.ReadFull(c, b)
				}
				c.Close()
			}
			if err != nil {
				peerDone <- err
				return
			}
		}
		peerDone <- nil
	}()
	for i := 0; i < crrConns; i++ {
		c, err := l.accept(10 * time.Second)
		if err != nil {
			t.Fatalf("%s: accept %d: %v", side.name(), i, err)
		}
		readN(t, side, c, 1)
		writeAll(t, side, c, []byte{1})
		readEOF(t, side, c) // the peer's FIN
		c.Close()
	}
	if err := <-peerDone; err != nil {
		t.Fatalf("%s: peer: %v", side.name(), err)
	}
	return rrSettled(t, side, before)
}
