package netstack

// DCTCP (RFC 8257) as Linux's tcp_dctcp.c has it: the sender keeps alpha,
// a moving average (gain g = 1/2^dctcp_shift_g) of the fraction of its
// packets that came back with ECE per window, and on an ECN echo reduces
// cwnd by alpha/2 instead of halving it; a loss still halves. The receiver
// echoes each CE mark exactly (ECE on while the last packet was CE), with
// an immediate ACK at every change of CE state, so that a delayed ACK does
// not blur two states. Every packet is ECT, SYNs and pure ACKs included
// (TCP_CONG_NEEDS_ECN); without ECN negotiated it falls back to Reno.

// dctcpMaxAlpha is DCTCP_MAX_ALPHA: alpha 1.0 in 1/1024. The module
// parameters dctcp_shift_g (4: g = 1/16) and dctcp_alpha_on_init (1024)
// are memctl's module/tcp_dctcp/parameters/ sysctls.
const dctcpMaxAlpha = 1024

// dctcpCC mirrors struct dctcp.
type dctcpCC struct {
	oldDelivered   uint32
	oldDeliveredCE uint32
	priorRcvNxt    uint32
	alpha          uint32
	nextSeq        uint32
	ceState        uint32
	lossCwnd       uint32
}

func (*dctcpCC) name() string      { return "dctcp" }
func (*dctcpCC) sndbufExpand() int { return 2 }
func (*dctcpCC) needsECN() bool    { return true }

// init starts alpha at its maximum on a connection that negotiated ECN,
// or on a listening or closed socket; a connection without ECN falls back
// to Reno and stops sending ECT. Mirrors dctcp_init.
func (d *dctcpCC) init(tp *TCPSock) {
	if tp.ecnOK() || tp.state == TCPListen || tp.state == TCPClose {
		d.priorRcvNxt = tp.rcvNxt
		d.alpha = min(tp.stack.net.Sysctls.DCTCPAlphaOnInit(), dctcpMaxAlpha)
		d.lossCwnd = 0
		d.ceState = 0
		d.reset(tp)
		return
	}
	tp.setCC(&dctcpRenoCC{}, "dctcp-reno")
}

// reset starts a new observation window. Mirrors dctcp_reset.
func (d *dctcpCC) reset(tp *TCPSock) {
	d.nextSeq = tp.sndNxt
	d.oldDelivered = tp.delivered
	d.oldDeliveredCE = tp.deliveredCE
}

// ssthresh is cwnd reduced by alpha/2. Mirrors dctcp_ssthresh.
func (d *dctcpCC) ssthresh(tp *TCPSock) uint32 {
	d.lossCwnd = tp.cwnd
	return max(tp.cwnd-(tp.cwnd*d.alpha)>>11, 2)
}

func (*dctcpCC) congAvoid(tp *TCPSock, acked uint32) { (&renoCC{}).congAvoid(tp, acked) }

// inAckEvent updates alpha once per window of data: alpha -= alpha*g,
// plus g times the fraction of packets delivered with ECE. Mirrors
// dctcp_update_alpha.
func (d *dctcpCC) inAckEvent(tp *TCPSock) {
	if seqLT(tp.sndUna, d.nextSeq) {
		return
	}
	delivered := tp.delivered - d.oldDelivered
	deliveredCE := tp.deliveredCE - d.oldDeliveredCE
	g := tp.stack.net.Sysctls.DCTCPShiftG()
	alpha := d.alpha
	if dec := alpha >> g; dec != 0 { // min_not_zero(alpha, alpha >> g)
		alpha -= dec
	} else {
		alpha = 0
	}
	if deliveredCE != 0 {
		// g*F in 1/1024. Linux shifts left by 10 - g, undefined for
		// g > 10; here a larger g shifts right instead.
		if g <= 10 {
			deliveredCE <<= 10 - g
		} else {
			deliveredCE >>= min(g-10, 31)
		}
		deliveredCE /= max(delivered, 1)
		alpha = min(alpha+deliveredCE, dctcpMaxAlpha)
	}
	d.alpha = alpha
	d.reset(tp)
}

// reactToLoss halves ssthresh. Mirrors dctcp_react_to_loss.
func (d *dctcpCC) reactToLoss(tp *TCPSock) {
	d.lossCwnd = tp.cwnd
	tp.ssthresh = max(tp.cwnd>>1, 2)
}

// setState halves on entering Recovery. Mirrors dctcp_state.
func (d *dctcpCC) setState(tp *TCPSock, s uint8) {
	if s == tcpCARecovery && s != tp.caState {
		d.reactToLoss(tp)
	}
}

// onLoss is CA_EVENT_LOSS (an RTO; sockfs also calls it on entering
// Recovery, where setState has already done the same). Mirrors the
// CA_EVENT_LOSS case of dctcp_cwnd_event.
func (d *dctcpCC) onLoss(tp *TCPSock) { d.reactToLoss(tp) }

// cwndEvent runs the receiver's CE state machine. Mirrors
// dctcp_cwnd_event.
func (d *dctcpCC) cwndEvent(tp *TCPSock, ev uint8) {
	if ev == caEventECNIsCE || ev == caEventECNNoCE {
		d.eceAckUpdate(tp, ev)
	}
}

// eceAckUpdate echoes the CE state of the last packet: on a change, an ACK
// that was being delayed goes first with the old state (for the data up to
// the previous packet), and the new state is acknowledged at once.
// Mirrors dctcp_ece_ack_update.
func (d *dctcpCC) eceAckUpdate(tp *TCPSock, ev uint8) {
	newState := uint32(0)
	if ev == caEventECNIsCE {
		newState = 1
	}
	if d.ceState != newState {
		if tp.ackPending&icskAckTimer != 0 {
			dctcpEceAckCwr(tp, d.ceState)
			tp.sendAckAt(d.priorRcvNxt)
		}
		tp.ackPending |= icskAckNow
	}
	d.priorRcvNxt = tp.rcvNxt
	d.ceState = newState
	dctcpEceAckCwr(tp, newState)
}

// dctcpEceAckCwr sets the ECE echo to the CE state. Mirrors
// dctcp_ece_ack_cwr.
func dctcpEceAckCwr(tp *TCPSock, ceState uint32) {
	if ceState == 1 {
		tp.ecnFlags |= tcpECNDemandCWR
	} else {
		tp.ecnFlags &^= tcpECNDemandCWR
	}
}

// undoCwnd mirrors dctcp_cwnd_undo.
func (d *dctcpCC) undoCwnd(tp *TCPSock) uint32 { return max(tp.cwnd, d.lossCwnd) }

func (*dctcpCC) pktsAcked(*TCPSock, ackSample) {}

// DCTCPInfo is DCTCP's state as ss -i shows it (struct tcp_dctcp_info).
type DCTCPInfo struct {
	CEState, Alpha, AbECN, AbTot uint32
}

// info mirrors dctcp_get_info: ab_ecn and ab_tot are the bytes (in MSS
// units) delivered with and without ECE in the current window.
func (d *dctcpCC) info(tp *TCPSock) DCTCPInfo {
	mss := uint32(tp.mssCache)
	return DCTCPInfo{CEState: d.ceState, Alpha: d.alpha,
		AbECN: mss * (tp.deliveredCE - d.oldDeliveredCE), AbTot: mss * (tp.delivered - d.oldDelivered)}
}

// dctcpRenoCC is what a DCTCP socket without ECN becomes: Reno under the
// name dctcp-reno. Mirrors dctcp_reno.
type dctcpRenoCC struct{ renoCC }

func (*dctcpRenoCC) name() string { return "dctcp-reno" }
