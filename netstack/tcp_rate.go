package netstack

// The delivery-rate sampler (draft-cheng-iccrg-delivery-rate-estimation):
// every skb is stamped when sent with the connection's delivered count and
// the time of the last delivery; the ACK that delivers it yields a sample
// of how many packets were delivered over how long since then. RACK takes
// its rounds from it (tcp_rack.go), BBR its bandwidth (tcp_bbr.go).
// Mirrors net/ipv4/tcp_rate.c. Times are nanoseconds of the stack clock
// where Linux keeps microseconds (tcp_mstamp), so that skb transmit times
// (skb.Tstamp) compare without conversion; interval_us and rtt_us are
// microseconds as in Linux.

import (
	"encoding/binary"

	"sockfs/memctl"
	"sockfs/skb"
)

// Offsets in the skb's control block of struct tcp_skb_cb's tx fields
// beyond tx.delivered (cbTxDelivered, tcp_seq.go): first_tx_mstamp,
// delivered_mstamp (both stack-clock ns) and is_app_limited.
const (
	cbTxFirstTx         = 28
	cbTxDeliveredMstamp = 36
	cbTxAppLimited      = 44
)

func cbGetTxFirstTx(b *skb.SKB) int64 { return int64(binary.LittleEndian.Uint64(b.CB[cbTxFirstTx:])) }
func cbGetTxDeliveredMstamp(b *skb.SKB) int64 {
	return int64(binary.LittleEndian.Uint64(b.CB[cbTxDeliveredMstamp:]))
}

// tcpRateState is the sampler's part of struct tcp_sock.
type tcpRateState struct {
	deliveredMstamp int64  // delivered_mstamp: when tp.delivered last grew
	firstTxMstamp   int64  // first_tx_mstamp: start of the current send phase
	appLimited      uint32 // app_limited: delivered+in flight when the bubble ends, 0 if none
	rateDelivered   uint32 // rate_delivered: the last kept sample's delivered
	rateIntervalUs  uint32 // rate_interval_us: and its interval
	rateAppLimited  bool   // rate_app_limited: and whether it was app-limited
	lost            uint32 // lost: segments ever marked lost (tcp_sum_lost)
}

// tcpRateSample is struct rate_sample: what the ACK being processed
// delivered, over what interval, as tcp_rate_gen computes it.
type tcpRateSample struct {
	have           bool   // an skb was delivered (Linux: prior_mstamp != 0)
	priorDelivered uint32 // prior_delivered: tx.delivered of the newest skb delivered
	priorMstamp    int64  // prior_mstamp: its tx.delivered_mstamp
	lastEndSeq     uint32 // last_end_seq: its end, breaking ties of send time
	delivered      int32  // delivered: packets delivered over the interval, -1 if invalid
	intervalUs     int64  // interval_us: max of the send and ACK phases, -1 if invalid
	rttUs          int64  // rtt_us: the ACK's RTT sample (ca_rtt_us), -1 if none
	losses         uint32 // losses: packets newly marked lost by this ACK
	ackedSacked    uint32 // acked_sacked: packets newly (S)ACKed by this ACK
	priorInFlight  uint32 // prior_in_flight: packets in flight before this ACK
	isAppLimited   bool   // is_app_limited: the newest skb delivered was sent app-limited
	isRetrans      bool   // is_retrans: it was a retransmission
	isAckDelayed   bool   // is_ack_delayed: the ACK was perhaps delayed (FLAG_ACK_MAYBE_DELAYED)
}

// sumLost counts pc segments of an skb whose sacked bits were s as lost,
// unless they already were and have not been retransmitted since.
// Mirrors tcp_sum_lost.
func (tp *TCPSock) sumLost(s uint8, pc uint32) {
	if s&tcpcbLost == 0 || s&tcpcbSackedRetrans != 0 {
		tp.rate.lost += pc
	}
}

// rateSkbSent stamps an skb as it is (re)transmitted: its departure time
// (tcp_wstamp_ns, the earliest departure time of pacing, never before
// now), the delivered count and the time of the last delivery then, the
// start of the send phase and whether the sender is app-limited. With
// nothing in flight a new send phase starts now. Callers call it before
// the skb counts in packets_out, where Linux's __tcp_transmit_skb does.
// Mirrors tcp_rate_skb_sent (and skb_mstamp_ns).
func (tp *TCPSock) rateSkbSent(b *skb.SKB) {
	r := &tp.rate
	b.Tstamp = max(tp.wstampNs, tp.now())
	if tp.packetsOut == 0 {
		r.firstTxMstamp = b.Tstamp
		r.deliveredMstamp = b.Tstamp
	}
	cbSetTxDelivered(b, tp.delivered)
	binary.LittleEndian.PutUint64(b.CB[cbTxFirstTx:], uint64(r.firstTxMstamp))
	binary.LittleEndian.PutUint64(b.CB[cbTxDeliveredMstamp:], uint64(r.deliveredMstamp))
	b.CB[cbTxAppLimited] = 0
	if r.appLimited != 0 {
		b.CB[cbTxAppLimited] = 1
	}
}

// rateSkbDelivered counts segs segments of b as delivered by the ACK being
// processed and, if b was sent after the newest skb delivered so far,
// takes b's stamps for the rate sample: the send phase runs from b's
// first_tx_mstamp to b's transmission. Each skb is counted once: when
// SACKed, or when acked if it was not SACKed before. Mirrors
// tcp_count_delivered + tcp_rate_skb_delivered.
func (tp *TCPSock) rateSkbDelivered(b *skb.SKB, segs uint32) {
	tp.delivered += segs
	tp.stack.mib.Add(memctl.TcpExtTCPDelivered, uint64(segs))
	rs := &tp.rs
	if !rs.have || rackSentAfter(b.Tstamp, tp.rate.firstTxMstamp, cbGetEndSeq(b), rs.lastEndSeq) {
		rs.have = true
		rs.priorDelivered = cbGetTxDelivered(b)
		rs.priorMstamp = cbGetTxDeliveredMstamp(b)
		rs.isAppLimited = b.CB[cbTxAppLimited] != 0
		rs.isRetrans = cbGetSacked(b)&tcpcbSackedRetrans != 0
		rs.lastEndSeq = cbGetEndSeq(b)
		tp.rate.firstTxMstamp = b.Tstamp
		rs.intervalUs = (b.Tstamp - cbGetTxFirstTx(b)) / nsPerUs
	}
}

// rateGen turns the ACK's deliveries into the rate sample: delivered
// packets since the newest delivered skb was sent, over the longer of its
// send phase and its ACK phase (now minus the last delivery before it was
// sent). A sample shorter than min_rtt is invalid (the skbs were SACKed
// earlier or spuriously retransmitted); an app-limited one is kept as the
// socket's rate only if it is faster. delivered and lost are this ACK's
// newly delivered and newly lost packets. Mirrors tcp_rate_gen (without
// is_sack_reneg: sockfs does not detect SACK reneging).
func (tp *TCPSock) rateGen(delivered, lost uint32, rs *tcpRateSample) {
	r := &tp.rate
	if r.appLimited != 0 && seqGT(tp.delivered, r.appLimited) {
		r.appLimited = 0 // the bubble is acked and gone
	}
	now := tp.now()
	if delivered != 0 {
		r.deliveredMstamp = now
	}
	rs.ackedSacked = delivered
	rs.losses = lost
	if !rs.have {
		rs.delivered, rs.intervalUs = -1, -1
		return
	}
	rs.delivered = int32(tp.delivered - rs.priorDelivered)
	sndUs := rs.intervalUs
	ackUs := (now - rs.priorMstamp) / nsPerUs
	rs.intervalUs = max(sndUs, ackUs)
	if rs.intervalUs < int64(tp.minRttUs()) {
		rs.intervalUs = -1
		return
	}
	if !rs.isAppLimited ||
		uint64(rs.delivered)*uint64(r.rateIntervalUs) >= uint64(r.rateDelivered)*uint64(rs.intervalUs) {
		r.rateDelivered = uint32(rs.delivered)
		r.rateIntervalUs = uint32(min(rs.intervalUs, int64(^uint32(0))))
		r.rateAppLimited = rs.isAppLimited
	}
}

// rateCheckAppLimited marks the sender app-limited when it has less than
// a segment to send, nothing waiting below TCP, room in cwnd and no lost
// segment waiting for retransmission: until what is in flight now is
// delivered, rate samples say more about the application than the path.
// Mirrors tcp_rate_check_app_limited.
func (tp *TCPSock) rateCheckAppLimited() {
	if int(tp.writeSeq-tp.sndNxt) < tp.mssCache &&
		tp.sk.WmemAllocGet() < skb.CurrentProfile().TruesizeOf(1) &&
		tp.packetsInFlight() < tp.cwnd &&
		tp.lostOut <= tp.retransOut {
		tp.markAppLimited()
	}
}

// markAppLimited sets app_limited to delivered plus in flight, at least 1.
func (tp *TCPSock) markAppLimited() {
	tp.rate.appLimited = max(tp.delivered+tp.packetsInFlight(), 1)
}

// deliveryRate is tcpi_delivery_rate: the last kept sample in bytes per
// second, 0 before the first. Mirrors tcp_compute_delivery_rate.
func (tp *TCPSock) deliveryRate() uint64 {
	r := &tp.rate
	if r.rateDelivered == 0 || r.rateIntervalUs == 0 {
		return 0
	}
	return uint64(r.rateDelivered) * uint64(tp.mssCache) * 1_000_000 / uint64(r.rateIntervalUs)
}
