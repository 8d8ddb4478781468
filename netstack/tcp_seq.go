package netstack

import (
	"encoding/binary"

	"sockfs/skb"
)

// Sequence-number arithmetic modulo 2^32 (RFC 9293 section 3.4). Mirrors
// before() / after() / between() (include/net/tcp.h).

// seqLT reports a < b.
func seqLT(a, b uint32) bool { return int32(a-b) < 0 }

// seqLEQ reports a <= b.
func seqLEQ(a, b uint32) bool { return int32(a-b) <= 0 }

// seqGT reports a > b.
func seqGT(a, b uint32) bool { return int32(a-b) > 0 }

// seqGEQ reports a >= b.
func seqGEQ(a, b uint32) bool { return int32(a-b) >= 0 }

// seqBetween reports lo <= x <= hi. Mirrors between().
func seqBetween(x, lo, hi uint32) bool { return hi-lo >= x-lo }

// seqMax returns the later of a and b.
func seqMax(a, b uint32) uint32 {
	if seqGT(a, b) {
		return a
	}
	return b
}

// The per-skb TCP control block, kept in skb.CB. Mirrors struct tcp_skb_cb.
// Offsets: seq 0, end_seq 4, ack_seq 8, tcp_flags 12, sacked 13, tsecr
// (received) 16, tx.delivered (sent, for RACK's rate sample) 20.
const (
	cbSeq         = 0
	cbEndSeq      = 4
	cbAckSeq      = 8
	cbFlags       = 12
	cbSacked      = 13
	cbTsecr       = 16
	cbTxDelivered = 20
)

// tcp_skb_cb->sacked bits.
const (
	tcpcbSackedAcked   = 0x01 // TCPCB_SACKED_ACKED
	tcpcbSackedRetrans = 0x02 // TCPCB_SACKED_RETRANS
	tcpcbLost          = 0x04 // TCPCB_LOST
	tcpcbEverRetrans   = 0x08 // TCPCB_EVER_RETRANS
)

func cbGetSeq(b *skb.SKB) uint32       { return binary.LittleEndian.Uint32(b.CB[cbSeq:]) }
func cbSetSeq(b *skb.SKB, v uint32)    { binary.LittleEndian.PutUint32(b.CB[cbSeq:], v) }
func cbGetEndSeq(b *skb.SKB) uint32    { return binary.LittleEndian.Uint32(b.CB[cbEndSeq:]) }
func cbSetEndSeq(b *skb.SKB, v uint32) { binary.LittleEndian.PutUint32(b.CB[cbEndSeq:], v) }
func cbGetAckSeq(b *skb.SKB) uint32    { return binary.LittleEndian.Uint32(b.CB[cbAckSeq:]) }
func cbSetAckSeq(b *skb.SKB, v uint32) { binary.LittleEndian.PutUint32(b.CB[cbAckSeq:], v) }
func cbGetFlags(b *skb.SKB) uint8      { return b.CB[cbFlags] }
func cbSetFlags(b *skb.SKB, f uint8)   { b.CB[cbFlags] = f }
func cbGetSacked(b *skb.SKB) uint8     { return b.CB[cbSacked] }
func cbSetSacked(b *skb.SKB, s uint8)  { b.CB[cbSacked] = s }
func cbGetTsecr(b *skb.SKB) uint32     { return binary.LittleEndian.Uint32(b.CB[cbTsecr:]) }
func cbSetTsecr(b *skb.SKB, v uint32)  { binary.LittleEndian.PutUint32(b.CB[cbTsecr:], v) }
func cbGetTxDelivered(b *skb.SKB) uint32 {
	return binary.LittleEndian.Uint32(b.CB[cbTxDelivered:])
}
func cbSetTxDelivered(b *skb.SKB, v uint32) {
	binary.LittleEndian.PutUint32(b.CB[cbTxDelivered:], v)
}
