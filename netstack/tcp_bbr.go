package netstack

// BBR v1 (Cardwell et al., "BBR: Congestion-Based Congestion Control",
// ACM Queue 2016) as Linux has it in net/ipv4/tcp_bbr.c. BBR models the
// path from the delivery-rate samples (tcp_rate.go): the bottleneck
// bandwidth is the windowed maximum of the samples over 10 packet-timed
// rounds, the propagation delay the minimum RTT over 10 s. It paces at
// pacing_gain times the bandwidth (internal pacing, tcp_pacing.go) and caps
// what is in flight at cwnd_gain times the BDP. Its modes:
//
//   - STARTUP: gain 2/ln2 on both, doubling the rate each round, until the
//     bandwidth has not grown by 25% for 3 rounds (the pipe is full);
//   - DRAIN: pacing gain ln2/2 until what is in flight is down to one BDP;
//   - PROBE_BW: an 8-phase cycle of pacing gains 5/4, 3/4, 1 x6, one
//     phase per min_rtt, cwnd gain 2;
//   - PROBE_RTT: when min_rtt has not been refreshed for 10 s, cwnd 4 for
//     200 ms and one round, to drain the queue and measure the path again.
//
// Fixed-point units as Linux's: bandwidth in packets per microsecond
// << 24 (BW_SCALE), gains in 1/256 (BBR_SCALE). Times are nanoseconds of
// the stack clock where Linux uses jiffies (min_rtt_stamp,
// probe_rtt_done_stamp) or microseconds (cycle_mstamp, ack_epoch_mstamp).

const (
	bbrBwScale  = 24 // BW_SCALE
	bbrBwUnit   = 1 << bbrBwScale
	bbrScale    = 8 // BBR_SCALE
	bbrUnit     = 1 << bbrScale
	bbrCycleLen = 8 // CYCLE_LEN: phases of the PROBE_BW gain cycle

	bbrBwRtts             = bbrCycleLen + 2 // bbr_bw_rtts: bw filter window, in rounds
	bbrMinRttWin          = 10 * 1_000_000_000
	bbrProbeRttModeNs     = 200 * 1_000_000 // bbr_probe_rtt_mode_ms
	bbrMinTsoRate         = 1200000         // bits per second, below which skbs carry one segment
	bbrPacingMarginPct    = 1               // pace 1% below the estimated bw
	bbrHighGain           = bbrUnit*2885/1000 + 1
	bbrDrainGain          = bbrUnit * 1000 / 2885
	bbrCwndGain           = bbrUnit * 2
	bbrCycleRand          = 7
	bbrCwndMinTarget      = 4
	bbrFullBwThresh       = bbrUnit * 5 / 4
	bbrFullBwCnt          = 3
	bbrLtIntvlMinRtts     = 4
	bbrLtLossThresh       = 50
	bbrLtBwRatio          = bbrUnit / 8
	bbrLtBwDiff           = 4000 / 8
	bbrLtBwMaxRtts        = 48
	bbrExtraAckedGain     = bbrUnit
	bbrExtraAckedWinRtts  = 5
	bbrAckEpochResetThres = 1 << 20
	bbrExtraAckedMaxUs    = 100 * 1000
)

// bbrPacingGain is bbr_pacing_gain, the PROBE_BW cycle.
var bbrPacingGain = [bbrCycleLen]uint32{
	bbrUnit * 5 / 4, bbrUnit * 3 / 4,
	bbrUnit, bbrUnit, bbrUnit, bbrUnit, bbrUnit, bbrUnit,
}

// BBR modes (enum bbr_mode).
const (
	bbrStartup  = 0 // BBR_STARTUP
	bbrDrain    = 1 // BBR_DRAIN
	bbrProbeBw  = 2 // BBR_PROBE_BW
	bbrProbeRtt = 3 // BBR_PROBE_RTT
)

// bbrModeNames are the modes as ss -i prints nothing for them; the names
// are tcp_bbr.c's.
var bbrModeNames = [...]string{"STARTUP", "DRAIN", "PROBE_BW", "PROBE_RTT"}

// bbrCC is struct bbr.
type bbrCC struct {
	minRttUs           uint32 // min_rtt_us
	minRttStamp        int64  // min_rtt_stamp
	probeRttDoneStamp  int64  // probe_rtt_done_stamp, 0 if not set
	bw                 minmax // max recent delivery rate, pkts/us << 24, over rounds (a running max)
	rttCnt             uint32 // rtt_cnt: packet-timed rounds elapsed
	nextRttDelivered   uint32 // next_rtt_delivered
	cycleMstamp        int64  // cycle_mstamp
	mode               uint8
	prevCAState        uint8
	packetConservation bool
	roundStart         bool
	idleRestart        bool
	probeRttRoundDone  bool
	ltIsSampling       bool
	ltRttCnt           uint32
	ltUseBw            bool
	ltBw               uint32
	ltLastDelivered    uint32
	ltLastStamp        int64 // ns
	ltLastLost         uint32
	pacingGain         uint32
	cwndGain           uint32
	fullBwReached      bool
	fullBwCnt          uint32
	cycleIdx           uint32
	hasSeenRtt         bool
	priorCwnd          uint32
	fullBw             uint32
	ackEpochMstamp     int64
	extraAcked         [2]uint32
	ackEpochAcked      uint32
	extraAckedWinRtts  uint32
	extraAckedWinIdx   uint32

	// probeRttCount counts entries into PROBE_RTT and probeRttLast is the
	// time of the latest, for status and tests (sockfs's addition).
	probeRttCount uint64
	probeRttLast  int64
	modesSeen     uint8 // 1<<mode for each mode entered
}

// setMode enters mode m.
func (b *bbrCC) setMode(m uint8) {
	b.mode = m
	b.modesSeen |= 1 << m
}

func (*bbrCC) name() string { return "bbr" }

// sndbufExpand is 3: BBR may slow-start even in recovery. Mirrors
// bbr_sndbuf_expand.
func (*bbrCC) sndbufExpand() int { return 3 }

// congAvoid is unused: congControl sets cwnd.
func (*bbrCC) congAvoid(*TCPSock, uint32)    {}
func (*bbrCC) onLoss(*TCPSock)               {}
func (*bbrCC) pktsAcked(*TCPSock, ackSample) {}

// maxBw is the windowed max bw. Mirrors bbr_max_bw.
func (b *bbrCC) maxBw() uint32 { return b.bw.get() }

// bwEst is the path's estimated bandwidth: the policer's long-term rate
// when one is detected, else the windowed max. Mirrors bbr_bw.
func (b *bbrCC) bwEst() uint32 {
	if b.ltUseBw {
		return b.ltBw
	}
	return b.maxBw()
}

// extraAckedMax mirrors bbr_extra_acked.
func (b *bbrCC) extraAckedMax() uint32 { return max(b.extraAcked[0], b.extraAcked[1]) }

// rateBytesPerSec converts a bw to bytes per second with a gain, 1% below.
// Mirrors bbr_rate_bytes_per_sec.
func bbrRateBytesPerSec(tp *TCPSock, rate uint64, gain uint32) uint64 {
	rate *= uint64(tp.mssCache)
	rate *= uint64(gain)
	rate >>= bbrScale
	rate *= 1_000_000 / 100 * (100 - bbrPacingMarginPct)
	return rate >> bbrBwScale
}

// bwToPacingRate mirrors bbr_bw_to_pacing_rate (sk_max_pacing_rate is
// unlimited in sockfs: no SO_MAX_PACING_RATE).
func bbrBwToPacingRate(tp *TCPSock, bw, gain uint32) uint64 {
	return bbrRateBytesPerSec(tp, uint64(bw), gain)
}

// initPacingRateFromRtt paces at high_gain * cwnd / srtt (1 ms before the
// first RTT sample). Mirrors bbr_init_pacing_rate_from_rtt.
func (b *bbrCC) initPacingRateFromRtt(tp *TCPSock) {
	rttUs := uint64(1000)
	if tp.srttUs != 0 {
		rttUs = uint64(max(tp.srttUs>>3, 1))
		b.hasSeenRtt = true
	}
	bw := uint64(tp.cwnd) * bbrBwUnit / rttUs
	tp.skPacingRate = bbrRateBytesPerSec(tp, bw, bbrHighGain)
}

// setPacingRate paces at gain * bw; before the pipe is full only upwards.
// Mirrors bbr_set_pacing_rate.
func (b *bbrCC) setPacingRate(tp *TCPSock, bw, gain uint32) {
	rate := bbrBwToPacingRate(tp, bw, gain)
	if !b.hasSeenRtt && tp.srttUs != 0 {
		b.initPacingRateFromRtt(tp)
	}
	if b.fullBwReached || rate > tp.skPacingRate {
		tp.skPacingRate = rate
	}
}

// minTsoSegs is 1 below bbr_min_tso_rate, else 2. Mirrors bbr_min_tso_segs.
func (*bbrCC) minTsoSegs(tp *TCPSock) int {
	if tp.skPacingRate < bbrMinTsoRate>>3 {
		return 1
	}
	return 2
}

// tsoSegsGoal is tcp_tso_autosize without the device's limit. Mirrors
// bbr_tso_segs_goal.
func (b *bbrCC) tsoSegsGoal(tp *TCPSock) uint32 {
	bytes := min(tp.skPacingRate>>tcpPacingShift, uint64(gsoMaxSize-1-maxTCPHeader()))
	segs := max(uint32(bytes/uint64(max(tp.mssCache, 1))), uint32(b.minTsoSegs(tp)))
	return min(segs, 0x7f)
}

// saveCwnd remembers the last good cwnd, to restore after recovery or
// PROBE_RTT. Mirrors bbr_save_cwnd.
func (b *bbrCC) saveCwnd(tp *TCPSock) {
	if b.prevCAState < tcpCARecovery && b.mode != bbrProbeRtt {
		b.priorCwnd = tp.cwnd
	} else {
		b.priorCwnd = max(b.priorCwnd, tp.cwnd)
	}
}

// cwndEvent: restarting from idle while app-limited, pace at the
// estimated bw (PROBE_BW) or see whether PROBE_RTT is over. Mirrors
// bbr_cwnd_event.
func (b *bbrCC) cwndEvent(tp *TCPSock, ev uint8) {
	if ev != caEventTxStart || tp.rate.appLimited == 0 {
		return
	}
	b.idleRestart = true
	b.ackEpochMstamp = tp.now()
	b.ackEpochAcked = 0
	if b.mode == bbrProbeBw {
		b.setPacingRate(tp, b.bwEst(), bbrUnit)
	} else if b.mode == bbrProbeRtt {
		b.checkProbeRttDone(tp)
	}
}

// bdp is ceil(bw * min_rtt * gain) in packets, TCP_INIT_CWND before any
// RTT sample. Mirrors bbr_bdp.
func (b *bbrCC) bdp(bw, gain uint32) uint32 {
	if b.minRttUs == ^uint32(0) {
		return tcpInitCwnd
	}
	w := uint64(bw) * uint64(b.minRttUs)
	return uint32(((w*uint64(gain))>>bbrScale + bbrBwUnit - 1) / bbrBwUnit)
}

// quantizationBudget leaves room for three TSO skbs, rounds up to even and
// adds 2 in the probing phase. Mirrors bbr_quantization_budget.
func (b *bbrCC) quantizationBudget(tp *TCPSock, cwnd uint32) uint32 {
	cwnd += 3 * b.tsoSegsGoal(tp)
	cwnd = (cwnd + 1) &^ 1
	if b.mode == bbrProbeBw && b.cycleIdx == 0 {
		cwnd += 2
	}
	return cwnd
}

// inflight mirrors bbr_inflight.
func (b *bbrCC) inflight(tp *TCPSock, bw, gain uint32) uint32 {
	return b.quantizationBudget(tp, b.bdp(bw, gain))
}

// packetsInNetAtEdt estimates what will be in the network when the next
// skb departs: in flight now less what the bw delivers until then (plus
// that skb when probing). Mirrors bbr_packets_in_net_at_edt.
func (b *bbrCC) packetsInNetAtEdt(tp *TCPSock, inflightNow uint32) uint32 {
	now := tp.now()
	edt := max(tp.wstampNs, now)
	intervalUs := uint64(edt-now) / uint64(nsPerUs)
	delivered := uint64(b.bwEst()) * intervalUs >> bbrBwScale
	atEdt := uint64(inflightNow)
	if b.pacingGain > bbrUnit {
		atEdt += uint64(b.tsoSegsGoal(tp))
	}
	if delivered >= atEdt {
		return 0
	}
	return uint32(atEdt - delivered)
}

// ackAggregationCwnd is the cwnd added for ACK aggregation once the pipe
// is full. Mirrors bbr_ack_aggregation_cwnd.
func (b *bbrCC) ackAggregationCwnd() uint32 {
	if bbrExtraAckedGain == 0 || !b.fullBwReached {
		return 0
	}
	maxAggr := uint32(uint64(b.bwEst()) * bbrExtraAckedMaxUs / bbrBwUnit)
	aggr := (bbrExtraAckedGain * b.extraAckedMax()) >> bbrScale
	return min(aggr, maxAggr)
}

// setCwndToRecoverOrRestore applies losses to cwnd, packet conservation in
// the first round of recovery, and restores the saved cwnd when recovery
// ends. Reports whether packet conservation set cwnd. Mirrors
// bbr_set_cwnd_to_recover_or_restore.
func (b *bbrCC) setCwndToRecoverOrRestore(tp *TCPSock, rs *tcpRateSample, acked uint32, newCwnd *uint32) bool {
	prev, state := b.prevCAState, tp.caState
	cwnd := tp.cwnd
	if rs.losses > 0 {
		cwnd = uint32(max(int64(cwnd)-int64(rs.losses), 1))
	}
	if state == tcpCARecovery && prev != tcpCARecovery {
		b.packetConservation = true
		b.nextRttDelivered = tp.delivered // start a round now
		cwnd = tp.packetsInFlight() + acked
	} else if prev >= tcpCARecovery && state < tcpCARecovery {
		cwnd = max(cwnd, b.priorCwnd)
		b.packetConservation = false
	}
	b.prevCAState = state
	if b.packetConservation {
		*newCwnd = max(cwnd, tp.packetsInFlight()+acked)
		return true
	}
	*newCwnd = cwnd
	return false
}

// setCwnd slow-starts cwnd toward cwnd_gain * BDP (plus the aggregation
// and TSO allowances), or cuts it there once the pipe is full; 4 in
// PROBE_RTT. Mirrors bbr_set_cwnd (snd_cwnd_clamp is unlimited in sockfs).
func (b *bbrCC) setCwnd(tp *TCPSock, rs *tcpRateSample, acked, bw, gain uint32) {
	cwnd := tp.cwnd
	if acked != 0 && !b.setCwndToRecoverOrRestore(tp, rs, acked, &cwnd) {
		target := b.bdp(bw, gain)
		target += b.ackAggregationCwnd()
		target = b.quantizationBudget(tp, target)
		if b.fullBwReached {
			cwnd = min(cwnd+acked, target)
		} else if cwnd < target || tp.delivered < tcpInitCwnd {
			cwnd += acked
		}
		cwnd = max(cwnd, bbrCwndMinTarget)
	}
	tp.cwnd = cwnd
	if b.mode == bbrProbeRtt {
		tp.cwnd = min(tp.cwnd, bbrCwndMinTarget)
	}
}

// isNextCyclePhase says whether the PROBE_BW phase is over: after a
// min_rtt at gain 1; probing (5/4) also needs the inflight target reached
// or a loss; draining (3/4) ends early once inflight is down to the BDP.
// Mirrors bbr_is_next_cycle_phase.
func (b *bbrCC) isNextCyclePhase(tp *TCPSock, rs *tcpRateSample) bool {
	fullLength := (tp.rate.deliveredMstamp-b.cycleMstamp)/nsPerUs > int64(b.minRttUs)
	if b.pacingGain == bbrUnit {
		return fullLength
	}
	inflight := b.packetsInNetAtEdt(tp, rs.priorInFlight)
	bw := b.maxBw()
	if b.pacingGain > bbrUnit {
		return fullLength && (rs.losses > 0 || inflight >= b.inflight(tp, bw, b.pacingGain))
	}
	return fullLength || inflight <= b.inflight(tp, bw, bbrUnit)
}

// advanceCyclePhase mirrors bbr_advance_cycle_phase.
func (b *bbrCC) advanceCyclePhase(tp *TCPSock) {
	b.cycleIdx = (b.cycleIdx + 1) & (bbrCycleLen - 1)
	b.cycleMstamp = tp.rate.deliveredMstamp
}

// updateCyclePhase mirrors bbr_update_cycle_phase.
func (b *bbrCC) updateCyclePhase(tp *TCPSock, rs *tcpRateSample) {
	if b.mode == bbrProbeBw && b.isNextCyclePhase(tp, rs) {
		b.advanceCyclePhase(tp)
	}
}

// resetProbeBwMode enters PROBE_BW at a random phase other than the
// draining one. Mirrors bbr_reset_probe_bw_mode.
func (b *bbrCC) resetProbeBwMode(tp *TCPSock) {
	b.setMode(bbrProbeBw)
	b.cycleIdx = bbrCycleLen - 1 - uint32(tp.stack.rand()%bbrCycleRand)
	b.advanceCyclePhase(tp)
}

// resetMode leaves PROBE_RTT for STARTUP or PROBE_BW. Mirrors bbr_reset_mode.
func (b *bbrCC) resetMode(tp *TCPSock) {
	if !b.fullBwReached {
		b.setMode(bbrStartup)
	} else {
		b.resetProbeBwMode(tp)
	}
}

// resetLtBwSamplingInterval mirrors bbr_reset_lt_bw_sampling_interval.
func (b *bbrCC) resetLtBwSamplingInterval(tp *TCPSock) {
	b.ltLastStamp = tp.rate.deliveredMstamp
	b.ltLastDelivered = tp.delivered
	b.ltLastLost = tp.rate.lost
	b.ltRttCnt = 0
}

// resetLtBwSampling mirrors bbr_reset_lt_bw_sampling.
func (b *bbrCC) resetLtBwSampling(tp *TCPSock) {
	b.ltBw = 0
	b.ltUseBw = false
	b.ltIsSampling = false
	b.resetLtBwSamplingInterval(tp)
}

// ltBwIntervalDone: two consecutive lossy intervals with the same rate
// mean a policer; use their average. Mirrors bbr_lt_bw_interval_done.
func (b *bbrCC) ltBwIntervalDone(tp *TCPSock, bw uint32) {
	if b.ltBw != 0 {
		diff := uint32(max(int64(bw)-int64(b.ltBw), int64(b.ltBw)-int64(bw)))
		if uint64(diff)*bbrUnit <= uint64(bbrLtBwRatio)*uint64(b.ltBw) ||
			bbrRateBytesPerSec(tp, uint64(diff), bbrUnit) <= bbrLtBwDiff {
			b.ltBw = (bw + b.ltBw) >> 1
			b.ltUseBw = true
			b.pacingGain = bbrUnit
			b.ltRttCnt = 0
			return
		}
	}
	b.ltBw = bw
	b.resetLtBwSamplingInterval(tp)
}

// ltBwSampling looks for a token-bucket policer: intervals of 4-16
// rounds, started and ended by a loss, with 20% or more lost. Mirrors
// bbr_lt_bw_sampling.
func (b *bbrCC) ltBwSampling(tp *TCPSock, rs *tcpRateSample) {
	if b.ltUseBw {
		if b.mode == bbrProbeBw && b.roundStart {
			b.ltRttCnt++
			if b.ltRttCnt >= bbrLtBwMaxRtts {
				b.resetLtBwSampling(tp)
				b.resetProbeBwMode(tp)
			}
		}
		return
	}
	if !b.ltIsSampling {
		if rs.losses == 0 {
			return
		}
		b.resetLtBwSamplingInterval(tp)
		b.ltIsSampling = true
	}
	if rs.isAppLimited {
		b.resetLtBwSampling(tp)
		return
	}
	if b.roundStart {
		b.ltRttCnt++
	}
	if b.ltRttCnt < bbrLtIntvlMinRtts {
		return
	}
	if b.ltRttCnt > 4*bbrLtIntvlMinRtts {
		b.resetLtBwSampling(tp)
		return
	}
	if rs.losses == 0 {
		return
	}
	lost := tp.rate.lost - b.ltLastLost
	delivered := tp.delivered - b.ltLastDelivered
	if delivered == 0 || uint64(lost)<<bbrScale < uint64(bbrLtLossThresh)*uint64(delivered) {
		return
	}
	// Linux measures the interval in whole milliseconds.
	tMs := (tp.rate.deliveredMstamp - b.ltLastStamp) / 1_000_000
	if tMs < 1 {
		return
	}
	if tMs >= int64(^uint32(0)/1000) {
		b.resetLtBwSampling(tp)
		return
	}
	bw := uint64(delivered) * bbrBwUnit / uint64(tMs*1000)
	b.ltBwIntervalDone(tp, uint32(min(bw, uint64(^uint32(0)))))
}

// updateBw counts packet-timed rounds and feeds the max filter with the
// sample's delivery rate, app-limited samples only if they raise it.
// Mirrors bbr_update_bw.
func (b *bbrCC) updateBw(tp *TCPSock, rs *tcpRateSample) {
	b.roundStart = false
	if rs.delivered < 0 || rs.intervalUs <= 0 {
		return
	}
	if !seqLT(rs.priorDelivered, b.nextRttDelivered) {
		b.nextRttDelivered = tp.delivered
		b.rttCnt++
		b.roundStart = true
		b.packetConservation = false
	}
	b.ltBwSampling(tp, rs)
	bw := uint64(rs.delivered) * bbrBwUnit / uint64(rs.intervalUs)
	bw32 := uint32(min(bw, uint64(^uint32(0))))
	if !rs.isAppLimited || bw32 >= b.maxBw() {
		b.bw.runningMax(bbrBwRtts, int64(b.rttCnt), bw32)
	}
}

// updateAckAggregation tracks the most data acked beyond what bw explains
// in an epoch, over 5-10 rounds. Mirrors bbr_update_ack_aggregation.
func (b *bbrCC) updateAckAggregation(tp *TCPSock, rs *tcpRateSample) {
	if bbrExtraAckedGain == 0 || rs.ackedSacked == 0 || rs.delivered < 0 || rs.intervalUs <= 0 {
		return
	}
	if b.roundStart {
		b.extraAckedWinRtts = min(0x1f, b.extraAckedWinRtts+1)
		if b.extraAckedWinRtts >= bbrExtraAckedWinRtts {
			b.extraAckedWinRtts = 0
			b.extraAckedWinIdx ^= 1
			b.extraAcked[b.extraAckedWinIdx] = 0
		}
	}
	epochUs := uint64(max(tp.rate.deliveredMstamp-b.ackEpochMstamp, 0)) / uint64(nsPerUs)
	expected := uint32(uint64(b.bwEst()) * epochUs / bbrBwUnit)
	if b.ackEpochAcked <= expected || b.ackEpochAcked+rs.ackedSacked >= bbrAckEpochResetThres {
		b.ackEpochAcked = 0
		b.ackEpochMstamp = tp.rate.deliveredMstamp
		expected = 0
	}
	b.ackEpochAcked = min(0xfffff, b.ackEpochAcked+rs.ackedSacked)
	extra := min(b.ackEpochAcked-expected, tp.cwnd)
	if extra > b.extraAcked[b.extraAckedWinIdx] {
		b.extraAcked[b.extraAckedWinIdx] = extra
	}
}

// checkFullBwReached: the pipe is full when 3 non-app-limited rounds in
// a row have not raised the max bw by 25%. Mirrors
// bbr_check_full_bw_reached.
func (b *bbrCC) checkFullBwReached(rs *tcpRateSample) {
	if b.fullBwReached || !b.roundStart || rs.isAppLimited {
		return
	}
	thresh := uint32(uint64(b.fullBw) * bbrFullBwThresh >> bbrScale)
	if b.maxBw() >= thresh {
		b.fullBw = b.maxBw()
		b.fullBwCnt = 0
		return
	}
	b.fullBwCnt++
	b.fullBwReached = b.fullBwCnt >= bbrFullBwCnt
}

// checkDrain goes from STARTUP to DRAIN once the pipe is full, and from
// DRAIN to PROBE_BW once what will be in the network is down to one BDP.
// Mirrors bbr_check_drain.
func (b *bbrCC) checkDrain(tp *TCPSock) {
	if b.mode == bbrStartup && b.fullBwReached {
		b.setMode(bbrDrain)
		tp.ssthresh = b.inflight(tp, b.maxBw(), bbrUnit)
	}
	if b.mode == bbrDrain && b.packetsInNetAtEdt(tp, tp.packetsInFlight()) <= b.inflight(tp, b.maxBw(), bbrUnit) {
		b.resetProbeBwMode(tp)
	}
}

// checkProbeRttDone leaves PROBE_RTT once its time is up, restoring cwnd.
// Mirrors bbr_check_probe_rtt_done.
func (b *bbrCC) checkProbeRttDone(tp *TCPSock) {
	if b.probeRttDoneStamp == 0 || tp.now() <= b.probeRttDoneStamp {
		return
	}
	b.minRttStamp = tp.now()
	tp.cwnd = max(tp.cwnd, b.priorCwnd)
	b.resetMode(tp)
}

// updateMinRtt keeps min_rtt over 10 s and runs PROBE_RTT: entered when
// the estimate expires, it holds cwnd at 4 for 200 ms and a round once the
// flight is down to 4, marking the sender app-limited meanwhile. Mirrors
// bbr_update_min_rtt.
func (b *bbrCC) updateMinRtt(tp *TCPSock, rs *tcpRateSample) {
	now := tp.now()
	expired := now > b.minRttStamp+bbrMinRttWin
	if rs.rttUs >= 0 && (rs.rttUs < int64(b.minRttUs) || (expired && !rs.isAckDelayed)) {
		b.minRttUs = uint32(min(rs.rttUs, int64(^uint32(0))))
		b.minRttStamp = now
	}
	if bbrProbeRttModeNs > 0 && expired && !b.idleRestart && b.mode != bbrProbeRtt {
		b.setMode(bbrProbeRtt)
		b.saveCwnd(tp)
		b.probeRttDoneStamp = 0
		b.probeRttCount++
		b.probeRttLast = now
	}
	if b.mode == bbrProbeRtt {
		tp.markAppLimited() // ignore the low-rate samples of this mode
		if b.probeRttDoneStamp == 0 && tp.packetsInFlight() <= bbrCwndMinTarget {
			b.probeRttDoneStamp = max(now+bbrProbeRttModeNs, 1)
			b.probeRttRoundDone = false
			b.nextRttDelivered = tp.delivered
		} else if b.probeRttDoneStamp != 0 {
			if b.roundStart {
				b.probeRttRoundDone = true
			}
			if b.probeRttRoundDone {
				b.checkProbeRttDone(tp)
			}
		}
	}
	if rs.delivered > 0 {
		b.idleRestart = false
	}
}

// updateGains sets the gains of the mode. Mirrors bbr_update_gains.
func (b *bbrCC) updateGains() {
	switch b.mode {
	case bbrStartup:
		b.pacingGain, b.cwndGain = bbrHighGain, bbrHighGain
	case bbrDrain:
		b.pacingGain, b.cwndGain = bbrDrainGain, bbrHighGain
	case bbrProbeBw:
		b.pacingGain = bbrPacingGain[b.cycleIdx]
		if b.ltUseBw {
			b.pacingGain = bbrUnit
		}
		b.cwndGain = bbrCwndGain
	case bbrProbeRtt:
		b.pacingGain, b.cwndGain = bbrUnit, bbrUnit
	}
}

// updateModel mirrors bbr_update_model.
func (b *bbrCC) updateModel(tp *TCPSock, rs *tcpRateSample) {
	b.updateBw(tp, rs)
	b.updateAckAggregation(tp, rs)
	b.updateCyclePhase(tp, rs)
	b.checkFullBwReached(rs)
	b.checkDrain(tp)
	b.updateMinRtt(tp, rs)
	b.updateGains()
}

// congControl is BBR's per-ACK work. Mirrors bbr_main.
func (b *bbrCC) congControl(tp *TCPSock, rs *tcpRateSample) {
	b.updateModel(tp, rs)
	bw := b.bwEst()
	b.setPacingRate(tp, bw, b.pacingGain)
	b.setCwnd(tp, rs, rs.ackedSacked, bw, b.cwndGain)
}

// init starts in STARTUP with ssthresh unlimited, min_rtt from the
// socket's and the pacing rate from srtt, and asks for internal pacing.
// Mirrors bbr_init.
func (b *bbrCC) init(tp *TCPSock) {
	*b = bbrCC{}
	tp.ssthresh = tcpInfiniteSsthresh
	b.nextRttDelivered = tp.delivered
	b.prevCAState = tcpCAOpen
	b.minRttUs = tp.minRttUs()
	b.minRttStamp = tp.now()
	b.bw.reset(0, 0)
	b.initPacingRateFromRtt(tp)
	b.resetLtBwSampling(tp)
	b.setMode(bbrStartup)
	b.ackEpochMstamp = tp.now()
	if tp.pacingStatus == skPacingNone {
		tp.pacingStatus = skPacingNeeded
	}
}

// undoCwnd keeps cwnd but restarts full-pipe detection: the slow-down
// was spurious. Mirrors bbr_undo_cwnd.
func (b *bbrCC) undoCwnd(tp *TCPSock) uint32 {
	b.fullBw = 0
	b.fullBwCnt = 0
	b.resetLtBwSampling(tp)
	return tp.cwnd
}

// ssthresh saves cwnd on entering recovery or loss and leaves ssthresh
// alone. Mirrors bbr_ssthresh.
func (b *bbrCC) ssthresh(tp *TCPSock) uint32 {
	b.saveCwnd(tp)
	return tp.ssthresh
}

// setState treats an RTO like the end of a round that lost a packet.
// Mirrors bbr_set_state.
func (b *bbrCC) setState(tp *TCPSock, newState uint8) {
	if newState == tcpCALoss {
		rs := tcpRateSample{losses: 1}
		b.prevCAState = tcpCALoss
		b.fullBw = 0
		b.roundStart = true
		b.ltBwSampling(tp, &rs)
	}
}

// BBRInfo is what ss -i prints for BBR (struct tcp_bbr_info): bw in bytes
// per second, min_rtt in microseconds, the gains in 1/256; and, beyond
// Linux's, the mode and how many times PROBE_RTT was entered.
type BBRInfo struct {
	Mode          string
	Bw            uint64
	MinRttUs      uint32
	PacingGain    uint32
	CwndGain      uint32
	ProbeRttCount uint64
}

// info mirrors bbr_get_info.
func (b *bbrCC) info(tp *TCPSock) BBRInfo {
	bw := uint64(b.bwEst()) * uint64(tp.mssCache) * 1_000_000 >> bbrBwScale
	return BBRInfo{Mode: bbrModeNames[b.mode], Bw: bw, MinRttUs: b.minRttUs,
		PacingGain: b.pacingGain, CwndGain: b.cwndGain, ProbeRttCount: b.probeRttCount}
}
