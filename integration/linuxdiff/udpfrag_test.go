package linuxdiff

import (
	"fmt"
	"testing"
)

// udpFragPayloads are UDP payloads that the peer sends in IPv4 fragments
// at MTU 1500 (1480 payload bytes a fragment): 1500 B ends in a 28-byte
// fragment that fits the first one's tailroom (skb_try_coalesce copies
// it, adding nothing to truesize); 2000 and 2500 B end in a second
// fragment chained whole; 2952 B is exactly two full fragments, 2960 B
// adds an 8-byte third one; 4000 B (three fragments, as the outside
// probe sent) and 9000 B (seven) as well. The reassembled datagram is
// charged what inet_frag_reasm_finish leaves in the head's truesize.
var udpFragPayloads = []int{1500, 2000, 2500, 2952, 2960, 4000, 9000}

// udpFragPackets bounds the fragments sent per size: below the sending
// TUN's queue (500), so every datagram reaches the socket whole.
const udpFragPackets = 400

// udpFragSweep sends datagrams of each size in udpFragPayloads, fragmented
// by the peer, into a socket that never reads: truesize per reassembled
// datagram (r / queued), queued, forward_alloc and drops must be the
// kernel's.
func udpFragSweep(t *testing.T, sides [2]sut, rs *rowSet) {
	for _, size := range udpFragPayloads {
		frags := (size + 8 + 1479) / 1480
		sent := udpFragPackets / frags
		var got [2]string
		for j, side := range sides {
			v, err := udpFillN(side, nextPort(), size, sent)
			if err != nil {
				t.Fatalf("%s, udp %d B in %d fragments: %v", side.name(), size, frags, err)
			}
			got[j] = v
		}
		rs.exact(fmt.Sprintf("udp %d B in %d IPv4 fragments, %d sent, into an unread socket", size, frags, sent), got[0], got[1])
	}
}
