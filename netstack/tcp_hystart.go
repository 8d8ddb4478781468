package netstack

// HyStart (Ha and Rhee, "Taming the elephants", 2011) for CUBIC: leave
// slow start before the first loss, when either the ACKs of one round keep
// arriving closely spaced for longer than half the path's minimum delay
// (an ACK train: the pipe is full) or the smallest RTT of a round's first
// samples exceeds the minimum delay by an eighth of it, clamped to 4-16 ms
// (a queue is building). On detection ssthresh becomes the current cwnd,
// so CUBIC's curve takes over from there. Mirrors bictcp_hystart_reset,
// hystart_update, hystart_ack_delay and cubictcp_acked (tcp_cubic.c);
// the knobs are tcp_cubic's module parameters, kept in memctl.Sysctls.

import (
	"sockfs/memctl"
)

// HyStart's constants (tcp_cubic.c).
const (
	hystartMinSamples = 8    // HYSTART_MIN_SAMPLES: RTT samples per round for delay detection
	hystartDelayMinUs = 4000 // HYSTART_DELAY_MIN
	hystartDelayMaxUs = 16000
)

// hystart is CUBIC's HyStart state (the hystart fields of struct bictcp).
// Times are microseconds of the socket clock, as bictcp_clock_us.
type hystart struct {
	found      bool   // found: slow start has been left by HyStart
	roundInit  bool   // a round has been started (bictcp_hystart_reset has run)
	sampleCnt  uint8  // sample_cnt: RTT samples taken this round
	delayMin   uint32 // delay_min: smallest RTT seen, 0 before the first
	currRtt    uint32 // curr_rtt: smallest RTT of this round's first samples
	endSeq     uint32 // end_seq: the round ends when snd_una passes it
	roundStart int64  // round_start: when the round began
	lastAck    int64  // last_ack: arrival of the train's latest ACK
}

// hystartDelayThresh clamps x to [HYSTART_DELAY_MIN, HYSTART_DELAY_MAX].
// Mirrors HYSTART_DELAY_THRESH.
func hystartDelayThresh(x uint32) uint32 {
	return min(max(x, hystartDelayMinUs), hystartDelayMaxUs)
}

// hystartReset starts a new round: it ends when what is sent by now has
// been acknowledged. Mirrors bictcp_hystart_reset.
func (h *hystart) hystartReset(tp *TCPSock, nowUs int64) {
	h.roundInit = true
	h.roundStart, h.lastAck = nowUs, nowUs
	h.endSeq = tp.sndNxt
	h.currRtt = ^uint32(0)
	h.sampleCnt = 0
}

// hystartAckDelay is the slack allowed for ACKs a GSO-sized burst may
// have delayed. Linux bounds it by sk_gso_max_size*4/sk_pacing_rate (at
// most 1 ms); sockfs sends no GSO skbs, like a Linux socket whose route
// has no GSO (sk_gso_max_size 0), for which hystart_ack_delay is 0.
// Mirrors hystart_ack_delay.
func hystartAckDelay(*TCPSock) uint32 { return 0 }

// hystartUpdate looks for the end of slow start in one RTT sample delay
// (microseconds) and, on finding it, sets ssthresh to cwnd and counts it.
// Mirrors hystart_update.
func (h *hystart) hystartUpdate(tp *TCPSock, delay uint32, nowUs int64) {
	sc := tp.stack.net.Sysctls
	// Linux starts the first round in cubictcp_init; sockfs creates the
	// state with the socket, before there is a snd_nxt, so the first
	// sample starts it, which is what Linux's first data ACK does too.
	if !h.roundInit || seqGT(tp.sndUna, h.endSeq) {
		h.hystartReset(tp, nowUs)
	}
	detect := sc.CubicHystartDetect()
	if detect&memctl.HystartAckTrain != 0 && nowUs-h.lastAck <= int64(sc.CubicHystartAckDeltaUs()) {
		h.lastAck = nowUs
		// The train must span half the minimum delay: sockfs does not
		// pace (SK_PACING_NONE), so Linux's halving always applies.
		threshold := (h.delayMin + hystartAckDelay(tp)) >> 1
		if nowUs-h.roundStart > int64(threshold) {
			h.found = true
			tp.stack.mib.Inc(memctl.TcpExtTCPHystartTrainDetect)
			tp.stack.mib.Add(memctl.TcpExtTCPHystartTrainCwnd, uint64(tp.cwnd))
			tp.ssthresh = tp.cwnd
		}
	}
	if detect&memctl.HystartDelay != 0 {
		h.currRtt = min(h.currRtt, delay)
		if h.sampleCnt < hystartMinSamples {
			h.sampleCnt++
		} else if h.currRtt > h.delayMin+hystartDelayThresh(h.delayMin>>3) {
			h.found = true
			tp.stack.mib.Inc(memctl.TcpExtTCPHystartDelayDetect)
			tp.stack.mib.Add(memctl.TcpExtTCPHystartDelayCwnd, uint64(tp.cwnd))
			tp.ssthresh = tp.cwnd
		}
	}
}
