// The counter tables: the column lists of /proc/net/snmp and /proc/net/netstat
// as Linux prints them (net/ipv4/proc.c, a 6.17/6.18 tree), in file order.
// Do not reorder: the formatters print in constant order.

package memctl

// Counter identifies one MIB counter. Its Go name is the group followed by
// Linux's column name, as nstat prints it (TcpExtTCPMemoryPressures).
type Counter int

// The counters, grouped as Linux prints them.
const (
	// Ip: /proc/net/snmp
	IpInReceives Counter = iota
	IpInHdrErrors
	IpInAddrErrors
	IpForwDatagrams
	IpInUnknownProtos
	IpInDiscards
	IpInDelivers
	IpOutRequests
	IpOutDiscards
	IpOutNoRoutes
	IpReasmTimeout
	IpReasmReqds
	IpReasmOKs
	IpReasmFails
	IpFragOKs
	IpFragFails
	IpFragCreates
	IpOutTransmits
	// Icmp: /proc/net/snmp
	IcmpInMsgs
	IcmpInErrors
	IcmpInCsumErrors
	IcmpInDestUnreachs
	IcmpInTimeExcds
	IcmpInParmProbs
	IcmpInSrcQuenchs
	IcmpInRedirects
	IcmpInEchos
	IcmpInEchoReps
	IcmpInTimestamps
	IcmpInTimestampReps
	IcmpInAddrMasks
	IcmpInAddrMaskReps
	IcmpOutMsgs
	IcmpOutErrors
	IcmpOutRateLimitGlobal
	IcmpOutRateLimitHost
	IcmpOutDestUnreachs
	IcmpOutTimeExcds
	IcmpOutParmProbs
	IcmpOutSrcQuenchs
	IcmpOutRedirects
	IcmpOutEchos
	IcmpOutEchoReps
	IcmpOutTimestamps
	IcmpOutTimestampReps
	IcmpOutAddrMasks
	IcmpOutAddrMaskReps
	// Tcp: /proc/net/snmp
	TcpRtoAlgorithm
	TcpRtoMin
	TcpRtoMax
	TcpMaxConn
	TcpActiveOpens
	TcpPassiveOpens
	TcpAttemptFails
	TcpEstabResets
	TcpCurrEstab
	TcpInSegs
	TcpOutSegs
	TcpRetransSegs
	TcpInErrs
	TcpOutRsts
	TcpInCsumErrors
	// Udp: /proc/net/snmp
	UdpInDatagrams
	UdpNoPorts
	UdpInErrors
	UdpOutDatagrams
	UdpRcvbufErrors
	UdpSndbufErrors
	UdpInCsumErrors
	UdpIgnoredMulti
	UdpMemErrors
	// UdpLite: /proc/net/snmp
	UdpLiteInDatagrams
	UdpLiteNoPorts
	UdpLiteInErrors
	UdpLiteOutDatagrams
	UdpLiteRcvbufErrors
	UdpLiteSndbufErrors
	UdpLiteInCsumErrors
	UdpLiteIgnoredMulti
	UdpLiteMemErrors
	// TcpExt: /proc/net/netstat
	TcpExtSyncookiesSent
	TcpExtSyncookiesRecv
	TcpExtSyncookiesFailed
	TcpExtEmbryonicRsts
	TcpExtPruneCalled
	TcpExtRcvPruned
	TcpExtOfoPruned
	TcpExtOutOfWindowIcmps
	TcpExtLockDroppedIcmps
	TcpExtArpFilter
	TcpExtTW
	TcpExtTWRecycled
	TcpExtTWKilled
	TcpExtPAWSActive
	TcpExtPAWSEstab
	TcpExtBeyondWindow
	TcpExtTSEcrRejected
	TcpExtPAWSOldAck
	TcpExtPAWSTimewait
	TcpExtDelayedACKs
	TcpExtDelayedACKLocked
	TcpExtDelayedACKLost
	TcpExtListenOverflows
	TcpExtListenDrops
	TcpExtTCPHPHits
	TcpExtTCPPureAcks
	TcpExtTCPHPAcks
	TcpExtTCPRenoRecovery
	TcpExtTCPSackRecovery
	TcpExtTCPSACKReneging
	TcpExtTCPSACKReorder
	TcpExtTCPRenoReorder
	TcpExtTCPTSReorder
	TcpExtTCPFullUndo
	TcpExtTCPPartialUndo
	TcpExtTCPDSACKUndo
	TcpExtTCPLossUndo
	TcpExtTCPLostRetransmit
	TcpExtTCPRenoFailures
	TcpExtTCPSackFailures
	TcpExtTCPLossFailures
	TcpExtTCPFastRetrans
	TcpExtTCPSlowStartRetrans
	TcpExtTCPTimeouts
	TcpExtTCPLossProbes
	TcpExtTCPLossProbeRecovery
	TcpExtTCPRenoRecoveryFail
	TcpExtTCPSackRecoveryFail
	TcpExtTCPRcvCollapsed
	TcpExtTCPBacklogCoalesce
	TcpExtTCPDSACKOldSent
	TcpExtTCPDSACKOfoSent
	TcpExtTCPDSACKRecv
	TcpExtTCPDSACKOfoRecv
	TcpExtTCPAbortOnData
	TcpExtTCPAbortOnClose
	TcpExtTCPAbortOnMemory
	TcpExtTCPAbortOnTimeout
	TcpExtTCPAbortOnLinger
	TcpExtTCPAbortFailed
	TcpExtTCPMemoryPressures
	TcpExtTCPMemoryPressuresChrono
	TcpExtTCPSACKDiscard
	TcpExtTCPDSACKIgnoredOld
	TcpExtTCPDSACKIgnoredNoUndo
	TcpExtTCPSpuriousRTOs
	TcpExtTCPMD5NotFound
	TcpExtTCPMD5Unexpected
	TcpExtTCPMD5Failure
	TcpExtTCPSackShifted
	TcpExtTCPSackMerged
	TcpExtTCPSackShiftFallback
	TcpExtTCPBacklogDrop
	TcpExtPFMemallocDrop
	TcpExtTCPMinTTLDrop
	TcpExtTCPDeferAcceptDrop
	TcpExtIPReversePathFilter
	TcpExtTCPTimeWaitOverflow
	TcpExtTCPReqQFullDoCookies
	TcpExtTCPReqQFullDrop
	TcpExtTCPRetransFail
	TcpExtTCPRcvCoalesce
	TcpExtTCPOFOQueue
	TcpExtTCPOFODrop
	TcpExtTCPOFOMerge
	TcpExtTCPChallengeACK
	TcpExtTCPSYNChallenge
	TcpExtTCPFastOpenActive
	TcpExtTCPFastOpenActiveFail
	TcpExtTCPFastOpenPassive
	TcpExtTCPFastOpenPassiveFail
	TcpExtTCPFastOpenListenOverflow
	TcpExtTCPFastOpenCookieReqd
	TcpExtTCPFastOpenBlackhole
	TcpExtTCPSpuriousRtxHostQueues
	TcpExtBusyPollRxPackets
	TcpExtTCPAutoCorking
	TcpExtTCPFromZeroWindowAdv
	TcpExtTCPToZeroWindowAdv
	TcpExtTCPWantZeroWindowAdv
	TcpExtTCPSynRetrans
	TcpExtTCPOrigDataSent
	TcpExtTCPHystartTrainDetect
	TcpExtTCPHystartTrainCwnd
	TcpExtTCPHystartDelayDetect
	TcpExtTCPHystartDelayCwnd
	TcpExtTCPACKSkippedSynRecv
	TcpExtTCPACKSkippedPAWS
	TcpExtTCPACKSkippedSeq
	TcpExtTCPACKSkippedFinWait2
	TcpExtTCPACKSkippedTimeWait
	TcpExtTCPACKSkippedChallenge
	TcpExtTCPWinProbe
	TcpExtTCPKeepAlive
	TcpExtTCPMTUPFail
	TcpExtTCPMTUPSuccess
	TcpExtTCPDelivered
	TcpExtTCPDeliveredCE
	TcpExtTCPAckCompressed
	TcpExtTCPZeroWindowDrop
	TcpExtTCPRcvQDrop
	TcpExtTCPWqueueTooBig
	TcpExtTCPFastOpenPassiveAltKey
	TcpExtTcpTimeoutRehash
	TcpExtTcpDuplicateDataRehash
	TcpExtTCPDSACKRecvSegs
	TcpExtTCPDSACKIgnoredDubious
	TcpExtTCPMigrateReqSuccess
	TcpExtTCPMigrateReqFailure
	TcpExtTCPPLBRehash
	TcpExtTCPAORequired
	TcpExtTCPAOBad
	TcpExtTCPAOKeyNotFound
	TcpExtTCPAOGood
	TcpExtTCPAODroppedIcmps
	// IpExt: /proc/net/netstat
	IpExtInNoRoutes
	IpExtInTruncatedPkts
	IpExtInMcastPkts
	IpExtOutMcastPkts
	IpExtInBcastPkts
	IpExtOutBcastPkts
	IpExtInOctets
	IpExtOutOctets
	IpExtInMcastOctets
	IpExtOutMcastOctets
	IpExtInBcastOctets
	IpExtOutBcastOctets
	IpExtInCsumErrors
	IpExtInNoECTPkts
	IpExtInECT1Pkts
	IpExtInECT0Pkts
	IpExtInCEPkts
	IpExtReasmOverlaps
	// Ip6: /proc/net/snmp6 (net/ipv6/proc.c snmp6_ipstats_list)
	Ip6InReceives
	Ip6InHdrErrors
	Ip6InTooBigErrors
	Ip6InNoRoutes
	Ip6InAddrErrors
	Ip6InUnknownProtos
	Ip6InTruncatedPkts
	Ip6InDiscards
	Ip6InDelivers
	Ip6OutForwDatagrams
	Ip6OutRequests
	Ip6OutDiscards
	Ip6OutNoRoutes
	Ip6ReasmTimeout
	Ip6ReasmReqds
	Ip6ReasmOKs
	Ip6ReasmFails
	Ip6FragOKs
	Ip6FragFails
	Ip6FragCreates
	Ip6InMcastPkts
	Ip6OutMcastPkts
	Ip6InOctets
	Ip6OutOctets
	Ip6InMcastOctets
	Ip6OutMcastOctets
	Ip6InBcastOctets
	Ip6OutBcastOctets
	Ip6InNoECTPkts
	Ip6InECT1Pkts
	Ip6InECT0Pkts
	Ip6InCEPkts
	Ip6OutTransmits
	// Icmp6: /proc/net/snmp6 (snmp6_icmp6_list, then the named
	// per-type columns of icmp6type2name, In then Out, in type order)
	Icmp6InMsgs
	Icmp6InErrors
	Icmp6OutMsgs
	Icmp6OutErrors
	Icmp6InCsumErrors
	Icmp6OutRateLimitHost
	Icmp6InDestUnreachs
	Icmp6InPktTooBigs
	Icmp6InTimeExcds
	Icmp6InParmProblems
	Icmp6InEchos
	Icmp6InEchoReplies
	Icmp6InGroupMembQueries
	Icmp6InGroupMembResponses
	Icmp6InGroupMembReductions
	Icmp6InRouterSolicits
	Icmp6InRouterAdvertisements
	Icmp6InNeighborSolicits
	Icmp6InNeighborAdvertisements
	Icmp6InRedirects
	Icmp6InMLDv2Reports
	Icmp6OutDestUnreachs
	Icmp6OutPktTooBigs
	Icmp6OutTimeExcds
	Icmp6OutParmProblems
	Icmp6OutEchos
	Icmp6OutEchoReplies
	Icmp6OutGroupMembQueries
	Icmp6OutGroupMembResponses
	Icmp6OutGroupMembReductions
	Icmp6OutRouterSolicits
	Icmp6OutRouterAdvertisements
	Icmp6OutNeighborSolicits
	Icmp6OutNeighborAdvertisements
	Icmp6OutRedirects
	Icmp6OutMLDv2Reports
	// Udp6: /proc/net/snmp6 (snmp6_udp6_list), in Udp's order
	Udp6InDatagrams
	Udp6NoPorts
	Udp6InErrors
	Udp6OutDatagrams
	Udp6RcvbufErrors
	Udp6SndbufErrors
	Udp6InCsumErrors
	Udp6IgnoredMulti
	Udp6MemErrors

	counterCount // number of counters; not a counter
)

// mibGroup is one pair of lines in /proc/net/snmp or /proc/net/netstat.
type mibGroup struct {
	name        string  // line prefix, without the colon
	first, last Counter // inclusive range of the group's counters
}

// counterNames maps a counter to its column name (without the group).
var counterNames = [counterCount]string{
	IpInReceives:                    "InReceives",
	IpInHdrErrors:                   "InHdrErrors",
	IpInAddrErrors:                  "InAddrErrors",
	IpForwDatagrams:                 "ForwDatagrams",
	IpInUnknownProtos:               "InUnknownProtos",
	IpInDiscards:                    "InDiscards",
	IpInDelivers:                    "InDelivers",
	IpOutRequests:                   "OutRequests",
	IpOutDiscards:                   "OutDiscards",
	IpOutNoRoutes:                   "OutNoRoutes",
	IpReasmTimeout:                  "ReasmTimeout",
	IpReasmReqds:                    "ReasmReqds",
	IpReasmOKs:                      "ReasmOKs",
	IpReasmFails:                    "ReasmFails",
	IpFragOKs:                       "FragOKs",
	IpFragFails:                     "FragFails",
	IpFragCreates:                   "FragCreates",
	IpOutTransmits:                  "OutTransmits",
	IcmpInMsgs:                      "InMsgs",
	IcmpInErrors:                    "InErrors",
	IcmpInCsumErrors:                "InCsumErrors",
	IcmpInDestUnreachs:              "InDestUnreachs",
	IcmpInTimeExcds:                 "InTimeExcds",
	IcmpInParmProbs:                 "InParmProbs",
	IcmpInSrcQuenchs:                "InSrcQuenchs",
	IcmpInRedirects:                 "InRedirects",
	IcmpInEchos:                     "InEchos",
	IcmpInEchoReps:                  "InEchoReps",
	IcmpInTimestamps:                "InTimestamps",
	IcmpInTimestampReps:             "InTimestampReps",
	IcmpInAddrMasks:                 "InAddrMasks",
	IcmpInAddrMaskReps:              "InAddrMaskReps",
	IcmpOutMsgs:                     "OutMsgs",
	IcmpOutErrors:                   "OutErrors",
	IcmpOutRateLimitGlobal:          "OutRateLimitGlobal",
	IcmpOutRateLimitHost:            "OutRateLimitHost",
	IcmpOutDestUnreachs:             "OutDestUnreachs",
	IcmpOutTimeExcds:                "OutTimeExcds",
	IcmpOutParmProbs:                "OutParmProbs",
	IcmpOutSrcQuenchs:               "OutSrcQuenchs",
	IcmpOutRedirects:                "OutRedirects",
	IcmpOutEchos:                    "OutEchos",
	IcmpOutEchoReps:                 "OutEchoReps",
	IcmpOutTimestamps:               "OutTimestamps",
	IcmpOutTimestampReps:            "OutTimestampReps",
	IcmpOutAddrMasks:                "OutAddrMasks",
	IcmpOutAddrMaskReps:             "OutAddrMaskReps",
	TcpRtoAlgorithm:                 "RtoAlgorithm",
	TcpRtoMin:                       "RtoMin",
	TcpRtoMax:                       "RtoMax",
	TcpMaxConn:                      "MaxConn",
	TcpActiveOpens:                  "ActiveOpens",
	TcpPassiveOpens:                 "PassiveOpens",
	TcpAttemptFails:                 "AttemptFails",
	TcpEstabResets:                  "EstabResets",
	TcpCurrEstab:                    "CurrEstab",
	TcpInSegs:                       "InSegs",
	TcpOutSegs:                      "OutSegs",
	TcpRetransSegs:                  "RetransSegs",
	TcpInErrs:                       "InErrs",
	TcpOutRsts:                      "OutRsts",
	TcpInCsumErrors:                 "InCsumErrors",
	UdpInDatagrams:                  "InDatagrams",
	UdpNoPorts:                      "NoPorts",
	UdpInErrors:                     "InErrors",
	UdpOutDatagrams:                 "OutDatagrams",
	UdpRcvbufErrors:                 "RcvbufErrors",
	UdpSndbufErrors:                 "SndbufErrors",
	UdpInCsumErrors:                 "InCsumErrors",
	UdpIgnoredMulti:                 "IgnoredMulti",
	UdpMemErrors:                    "MemErrors",
	UdpLiteInDatagrams:              "InDatagrams",
	UdpLiteNoPorts:                  "NoPorts",
	UdpLiteInErrors:                 "InErrors",
	UdpLiteOutDatagrams:             "OutDatagrams",
	UdpLiteRcvbufErrors:             "RcvbufErrors",
	UdpLiteSndbufErrors:             "SndbufErrors",
	UdpLiteInCsumErrors:             "InCsumErrors",
	UdpLiteIgnoredMulti:             "IgnoredMulti",
	UdpLiteMemErrors:                "MemErrors",
	TcpExtSyncookiesSent:            "SyncookiesSent",
	TcpExtSyncookiesRecv:            "SyncookiesRecv",
	TcpExtSyncookiesFailed:          "SyncookiesFailed",
	TcpExtEmbryonicRsts:             "EmbryonicRsts",
	TcpExtPruneCalled:               "PruneCalled",
	TcpExtRcvPruned:                 "RcvPruned",
	TcpExtOfoPruned:                 "OfoPruned",
	TcpExtOutOfWindowIcmps:          "OutOfWindowIcmps",
	TcpExtLockDroppedIcmps:          "LockDroppedIcmps",
	TcpExtArpFilter:                 "ArpFilter",
	TcpExtTW:                        "TW",
	TcpExtTWRecycled:                "TWRecycled",
	TcpExtTWKilled:                  "TWKilled",
	TcpExtPAWSActive:                "PAWSActive",
	TcpExtPAWSEstab:                 "PAWSEstab",
	TcpExtBeyondWindow:              "BeyondWindow",
	TcpExtTSEcrRejected:             "TSEcrRejected",
	TcpExtPAWSOldAck:                "PAWSOldAck",
	TcpExtPAWSTimewait:              "PAWSTimewait",
	TcpExtDelayedACKs:               "DelayedACKs",
	TcpExtDelayedACKLocked:          "DelayedACKLocked",
	TcpExtDelayedACKLost:            "DelayedACKLost",
	TcpExtListenOverflows:           "ListenOverflows",
	TcpExtListenDrops:               "ListenDrops",
	TcpExtTCPHPHits:                 "TCPHPHits",
	TcpExtTCPPureAcks:               "TCPPureAcks",
	TcpExtTCPHPAcks:                 "TCPHPAcks",
	TcpExtTCPRenoRecovery:           "TCPRenoRecovery",
	TcpExtTCPSackRecovery:           "TCPSackRecovery",
	TcpExtTCPSACKReneging:           "TCPSACKReneging",
	TcpExtTCPSACKReorder:            "TCPSACKReorder",
	TcpExtTCPRenoReorder:            "TCPRenoReorder",
	TcpExtTCPTSReorder:              "TCPTSReorder",
	TcpExtTCPFullUndo:               "TCPFullUndo",
	TcpExtTCPPartialUndo:            "TCPPartialUndo",
	TcpExtTCPDSACKUndo:              "TCPDSACKUndo",
	TcpExtTCPLossUndo:               "TCPLossUndo",
	TcpExtTCPLostRetransmit:         "TCPLostRetransmit",
	TcpExtTCPRenoFailures:           "TCPRenoFailures",
	TcpExtTCPSackFailures:           "TCPSackFailures",
	TcpExtTCPLossFailures:           "TCPLossFailures",
	TcpExtTCPFastRetrans:            "TCPFastRetrans",
	TcpExtTCPSlowStartRetrans:       "TCPSlowStartRetrans",
	TcpExtTCPTimeouts:               "TCPTimeouts",
	TcpExtTCPLossProbes:             "TCPLossProbes",
	TcpExtTCPLossProbeRecovery:      "TCPLossProbeRecovery",
	TcpExtTCPRenoRecoveryFail:       "TCPRenoRecoveryFail",
	TcpExtTCPSackRecoveryFail:       "TCPSackRecoveryFail",
	TcpExtTCPRcvCollapsed:           "TCPRcvCollapsed",
	TcpExtTCPBacklogCoalesce:        "TCPBacklogCoalesce",
	TcpExtTCPDSACKOldSent:           "TCPDSACKOldSent",
	TcpExtTCPDSACKOfoSent:           "TCPDSACKOfoSent",
	TcpExtTCPDSACKRecv:              "TCPDSACKRecv",
	TcpExtTCPDSACKOfoRecv:           "TCPDSACKOfoRecv",
	TcpExtTCPAbortOnData:            "TCPAbortOnData",
	TcpExtTCPAbortOnClose:           "TCPAbortOnClose",
	TcpExtTCPAbortOnMemory:          "TCPAbortOnMemory",
	TcpExtTCPAbortOnTimeout:         "TCPAbortOnTimeout",
	TcpExtTCPAbortOnLinger:          "TCPAbortOnLinger",
	TcpExtTCPAbortFailed:            "TCPAbortFailed",
	TcpExtTCPMemoryPressures:        "TCPMemoryPressures",
	TcpExtTCPMemoryPressuresChrono:  "TCPMemoryPressuresChrono",
	TcpExtTCPSACKDiscard:            "TCPSACKDiscard",
	TcpExtTCPDSACKIgnoredOld:        "TCPDSACKIgnoredOld",
	TcpExtTCPDSACKIgnoredNoUndo:     "TCPDSACKIgnoredNoUndo",
	TcpExtTCPSpuriousRTOs:           "TCPSpuriousRTOs",
	TcpExtTCPMD5NotFound:            "TCPMD5NotFound",
	TcpExtTCPMD5Unexpected:          "TCPMD5Unexpected",
	TcpExtTCPMD5Failure:             "TCPMD5Failure",
	TcpExtTCPSackShifted:            "TCPSackShifted",
	TcpExtTCPSackMerged:             "TCPSackMerged",
	TcpExtTCPSackShiftFallback:      "TCPSackShiftFallback",
	TcpExtTCPBacklogDrop:            "TCPBacklogDrop",
	TcpExtPFMemallocDrop:            "PFMemallocDrop",
	TcpExtTCPMinTTLDrop:             "TCPMinTTLDrop",
	TcpExtTCPDeferAcceptDrop:        "TCPDeferAcceptDrop",
	TcpExtIPReversePathFilter:       "IPReversePathFilter",
	TcpExtTCPTimeWaitOverflow:       "TCPTimeWaitOverflow",
	TcpExtTCPReqQFullDoCookies:      "TCPReqQFullDoCookies",
	TcpExtTCPReqQFullDrop:           "TCPReqQFullDrop",
	TcpExtTCPRetransFail:            "TCPRetransFail",
	TcpExtTCPRcvCoalesce:            "TCPRcvCoalesce",
	TcpExtTCPOFOQueue:               "TCPOFOQueue",
	TcpExtTCPOFODrop:                "TCPOFODrop",
	TcpExtTCPOFOMerge:               "TCPOFOMerge",
	TcpExtTCPChallengeACK:           "TCPChallengeACK",
	TcpExtTCPSYNChallenge:           "TCPSYNChallenge",
	TcpExtTCPFastOpenActive:         "TCPFastOpenActive",
	TcpExtTCPFastOpenActiveFail:     "TCPFastOpenActiveFail",
	TcpExtTCPFastOpenPassive:        "TCPFastOpenPassive",
	TcpExtTCPFastOpenPassiveFail:    "TCPFastOpenPassiveFail",
	TcpExtTCPFastOpenListenOverflow: "TCPFastOpenListenOverflow",
	TcpExtTCPFastOpenCookieReqd:     "TCPFastOpenCookieReqd",
	TcpExtTCPFastOpenBlackhole:      "TCPFastOpenBlackhole",
	TcpExtTCPSpuriousRtxHostQueues:  "TCPSpuriousRtxHostQueues",
	TcpExtBusyPollRxPackets:         "BusyPollRxPackets",
	TcpExtTCPAutoCorking:            "TCPAutoCorking",
	TcpExtTCPFromZeroWindowAdv:      "TCPFromZeroWindowAdv",
	TcpExtTCPToZeroWindowAdv:        "TCPToZeroWindowAdv",
	TcpExtTCPWantZeroWindowAdv:      "TCPWantZeroWindowAdv",
	TcpExtTCPSynRetrans:             "TCPSynRetrans",
	TcpExtTCPOrigDataSent:           "TCPOrigDataSent",
	TcpExtTCPHystartTrainDetect:     "TCPHystartTrainDetect",
	TcpExtTCPHystartTrainCwnd:       "TCPHystartTrainCwnd",
	TcpExtTCPHystartDelayDetect:     "TCPHystartDelayDetect",
	TcpExtTCPHystartDelayCwnd:       "TCPHystartDelayCwnd",
	TcpExtTCPACKSkippedSynRecv:      "TCPACKSkippedSynRecv",
	TcpExtTCPACKSkippedPAWS:         "TCPACKSkippedPAWS",
	TcpExtTCPACKSkippedSeq:          "TCPACKSkippedSeq",
	TcpExtTCPACKSkippedFinWait2:     "TCPACKSkippedFinWait2",
	TcpExtTCPACKSkippedTimeWait:     "TCPACKSkippedTimeWait",
	TcpExtTCPACKSkippedChallenge:    "TCPACKSkippedChallenge",
	TcpExtTCPWinProbe:               "TCPWinProbe",
	TcpExtTCPKeepAlive:              "TCPKeepAlive",
	TcpExtTCPMTUPFail:               "TCPMTUPFail",
	TcpExtTCPMTUPSuccess:            "TCPMTUPSuccess",
	TcpExtTCPDelivered:              "TCPDelivered",
	TcpExtTCPDeliveredCE:            "TCPDeliveredCE",
	TcpExtTCPAckCompressed:          "TCPAckCompressed",
	TcpExtTCPZeroWindowDrop:         "TCPZeroWindowDrop",
	TcpExtTCPRcvQDrop:               "TCPRcvQDrop",
	TcpExtTCPWqueueTooBig:           "TCPWqueueTooBig",
	TcpExtTCPFastOpenPassiveAltKey:  "TCPFastOpenPassiveAltKey",
	TcpExtTcpTimeoutRehash:          "TcpTimeoutRehash",
	TcpExtTcpDuplicateDataRehash:    "TcpDuplicateDataRehash",
	TcpExtTCPDSACKRecvSegs:          "TCPDSACKRecvSegs",
	TcpExtTCPDSACKIgnoredDubious:    "TCPDSACKIgnoredDubious",
	TcpExtTCPMigrateReqSuccess:      "TCPMigrateReqSuccess",
	TcpExtTCPMigrateReqFailure:      "TCPMigrateReqFailure",
	TcpExtTCPPLBRehash:              "TCPPLBRehash",
	TcpExtTCPAORequired:             "TCPAORequired",
	TcpExtTCPAOBad:                  "TCPAOBad",
	TcpExtTCPAOKeyNotFound:          "TCPAOKeyNotFound",
	TcpExtTCPAOGood:                 "TCPAOGood",
	TcpExtTCPAODroppedIcmps:         "TCPAODroppedIcmps",
	IpExtInNoRoutes:                 "InNoRoutes",
	IpExtInTruncatedPkts:            "InTruncatedPkts",
	IpExtInMcastPkts:                "InMcastPkts",
	IpExtOutMcastPkts:               "OutMcastPkts",
	IpExtInBcastPkts:                "InBcastPkts",
	IpExtOutBcastPkts:               "OutBcastPkts",
	IpExtInOctets:                   "InOctets",
	IpExtOutOctets:                  "OutOctets",
	IpExtInMcastOctets:              "InMcastOctets",
	IpExtOutMcastOctets:             "OutMcastOctets",
	IpExtInBcastOctets:              "InBcastOctets",
	IpExtOutBcastOctets:             "OutBcastOctets",
	IpExtInCsumErrors:               "InCsumErrors",
	IpExtInNoECTPkts:                "InNoECTPkts",
	IpExtInECT1Pkts:                 "InECT1Pkts",
	IpExtInECT0Pkts:                 "InECT0Pkts",
	IpExtInCEPkts:                   "InCEPkts",
	IpExtReasmOverlaps:              "ReasmOverlaps",
	Ip6InReceives:                   "InReceives",
	Ip6InHdrErrors:                  "InHdrErrors",
	Ip6InTooBigErrors:               "InTooBigErrors",
	Ip6InNoRoutes:                   "InNoRoutes",
	Ip6InAddrErrors:                 "InAddrErrors",
	Ip6InUnknownProtos:              "InUnknownProtos",
	Ip6InTruncatedPkts:              "InTruncatedPkts",
	Ip6InDiscards:                   "InDiscards",
	Ip6InDelivers:                   "InDelivers",
	Ip6OutForwDatagrams:             "OutForwDatagrams",
	Ip6OutRequests:                  "OutRequests",
	Ip6OutDiscards:                  "OutDiscards",
	Ip6OutNoRoutes:                  "OutNoRoutes",
	Ip6ReasmTimeout:                 "ReasmTimeout",
	Ip6ReasmReqds:                   "ReasmReqds",
	Ip6ReasmOKs:                     "ReasmOKs",
	Ip6ReasmFails:                   "ReasmFails",
	Ip6FragOKs:                      "FragOKs",
	Ip6FragFails:                    "FragFails",
	Ip6FragCreates:                  "FragCreates",
	Ip6InMcastPkts:                  "InMcastPkts",
	Ip6OutMcastPkts:                 "OutMcastPkts",
	Ip6InOctets:                     "InOctets",
	Ip6OutOctets:                    "OutOctets",
	Ip6InMcastOctets:                "InMcastOctets",
	Ip6OutMcastOctets:               "OutMcastOctets",
	Ip6InBcastOctets:                "InBcastOctets",
	Ip6OutBcastOctets:               "OutBcastOctets",
	Ip6InNoECTPkts:                  "InNoECTPkts",
	Ip6InECT1Pkts:                   "InECT1Pkts",
	Ip6InECT0Pkts:                   "InECT0Pkts",
	Ip6InCEPkts:                     "InCEPkts",
	Ip6OutTransmits:                 "OutTransmits",
	Icmp6InMsgs:                     "InMsgs",
	Icmp6InErrors:                   "InErrors",
	Icmp6OutMsgs:                    "OutMsgs",
	Icmp6OutErrors:                  "OutErrors",
	Icmp6InCsumErrors:               "InCsumErrors",
	Icmp6OutRateLimitHost:           "OutRateLimitHost",
	Icmp6InDestUnreachs:             "InDestUnreachs",
	Icmp6InPktTooBigs:               "InPktTooBigs",
	Icmp6InTimeExcds:                "InTimeExcds",
	Icmp6InParmProblems:             "InParmProblems",
	Icmp6InEchos:                    "InEchos",
	Icmp6InEchoReplies:              "InEchoReplies",
	Icmp6InGroupMembQueries:         "InGroupMembQueries",
	Icmp6InGroupMembResponses:       "InGroupMembResponses",
	Icmp6InGroupMembReductions:      "InGroupMembReductions",
	Icmp6InRouterSolicits:           "InRouterSolicits",
	Icmp6InRouterAdvertisements:     "InRouterAdvertisements",
	Icmp6InNeighborSolicits:         "InNeighborSolicits",
	Icmp6InNeighborAdvertisements:   "InNeighborAdvertisements",
	Icmp6InRedirects:                "InRedirects",
	Icmp6InMLDv2Reports:             "InMLDv2Reports",
	Icmp6OutDestUnreachs:            "OutDestUnreachs",
	Icmp6OutPktTooBigs:              "OutPktTooBigs",
	Icmp6OutTimeExcds:               "OutTimeExcds",
	Icmp6OutParmProblems:            "OutParmProblems",
	Icmp6OutEchos:                   "OutEchos",
	Icmp6OutEchoReplies:             "OutEchoReplies",
	Icmp6OutGroupMembQueries:        "OutGroupMembQueries",
	Icmp6OutGroupMembResponses:      "OutGroupMembResponses",
	Icmp6OutGroupMembReductions:     "OutGroupMembReductions",
	Icmp6OutRouterSolicits:          "OutRouterSolicits",
	Icmp6OutRouterAdvertisements:    "OutRouterAdvertisements",
	Icmp6OutNeighborSolicits:        "OutNeighborSolicits",
	Icmp6OutNeighborAdvertisements:  "OutNeighborAdvertisements",
	Icmp6OutRedirects:               "OutRedirects",
	Icmp6OutMLDv2Reports:            "OutMLDv2Reports",
	Udp6InDatagrams:                 "InDatagrams",
	Udp6NoPorts:                     "NoPorts",
	Udp6InErrors:                    "InErrors",
	Udp6OutDatagrams:                "OutDatagrams",
	Udp6RcvbufErrors:                "RcvbufErrors",
	Udp6SndbufErrors:                "SndbufErrors",
	Udp6InCsumErrors:                "InCsumErrors",
	Udp6IgnoredMulti:                "IgnoredMulti",
	Udp6MemErrors:                   "MemErrors",
}

// mibGroups lists the groups in file order.
var mibGroups = [...]mibGroup{
	{"Ip", IpInReceives, IpOutTransmits},
	{"Icmp", IcmpInMsgs, IcmpOutAddrMaskReps},
	{"Tcp", TcpRtoAlgorithm, TcpInCsumErrors},
	{"Udp", UdpInDatagrams, UdpMemErrors},
	{"UdpLite", UdpLiteInDatagrams, UdpLiteMemErrors},
	{"TcpExt", TcpExtSyncookiesSent, TcpExtTCPAODroppedIcmps},
	{"IpExt", IpExtInNoRoutes, IpExtReasmOverlaps},
	{"Ip6", Ip6InReceives, Ip6OutTransmits},
	{"Icmp6", Icmp6InMsgs, Icmp6OutMLDv2Reports},
	{"Udp6", Udp6InDatagrams, Udp6MemErrors},
}
