package header

// Error is the reason bytes failed to validate as a header. Its values are
// comparable constants, so callers can switch on the error a Check returns
// (for example to count ErrIPv4Checksum as InCsumErrors) without
// allocation.
type Error uint8

// Validation errors. The comment of each says which Check returns it.
const (
	_ Error = iota

	// ErrIPv4Short: fewer than IPv4MinSize bytes (IPv4.Check).
	ErrIPv4Short
	// ErrIPv4Version: the version field is not 4 (IPv4.Check).
	ErrIPv4Version
	// ErrIPv4IHL: IHL below 5, or the header runs past the packet
	// (IPv4.Check).
	ErrIPv4IHL
	// ErrIPv4Checksum: the header checksum is wrong (IPv4.Check).
	ErrIPv4Checksum
	// ErrIPv4Truncated: TotalLength is larger than the packet (IPv4.Check).
	ErrIPv4Truncated
	// ErrIPv4Length: TotalLength is smaller than the header (IPv4.Check).
	ErrIPv4Length

	// ErrICMPv4Short: fewer than ICMPv4MinSize bytes (ICMPv4.Check).
	ErrICMPv4Short
	// ErrICMPv4Checksum: the message checksum is wrong (ICMPv4.Check).
	ErrICMPv4Checksum

	// ErrUDPShort: fewer than UDPMinSize bytes (UDP.Check).
	ErrUDPShort
	// ErrUDPLength: the length field is below UDPMinSize (UDP.Check).
	ErrUDPLength
	// ErrUDPTruncated: the length field is larger than the datagram's
	// bytes (UDP.Check).
	ErrUDPTruncated

	// ErrTCPShort: fewer than TCPMinSize bytes, or the data offset runs
	// past the segment (TCP.Check).
	ErrTCPShort
	// ErrTCPDataOffset: the data offset is below 5 words (TCP.Check).
	ErrTCPDataOffset

	// ErrTCPOptionLength: an option's length byte is missing, below 2 or
	// runs past the options; parsing stopped there (ParseTCPOptions).
	ErrTCPOptionLength
	// ErrTCPOptionSize: a known option has a length its kind does not
	// allow; it was skipped and parsing went on (ParseTCPOptions).
	ErrTCPOptionSize
)

var errorText = [...]string{
	ErrIPv4Short:       "ipv4: shorter than a header",
	ErrIPv4Version:     "ipv4: version is not 4",
	ErrIPv4IHL:         "ipv4: header length below 20 or past the packet",
	ErrIPv4Checksum:    "ipv4: bad header checksum",
	ErrIPv4Truncated:   "ipv4: total length past the end of the packet",
	ErrIPv4Length:      "ipv4: total length below the header length",
	ErrICMPv4Short:     "icmpv4: shorter than a header",
	ErrICMPv4Checksum:  "icmpv4: bad checksum",
	ErrUDPShort:        "udp: shorter than a header",
	ErrUDPLength:       "udp: length field below 8",
	ErrUDPTruncated:    "udp: length field past the end of the datagram",
	ErrTCPShort:        "tcp: shorter than its header",
	ErrTCPDataOffset:   "tcp: data offset below 5",
	ErrTCPOptionLength: "tcp: option length below 2 or past the options",
	ErrTCPOptionSize:   "tcp: option of a known kind with a wrong length",
}

// Error returns a short description prefixed with the protocol.
func (e Error) Error() string {
	if int(e) < len(errorText) && errorText[e] != "" {
		return "header: " + errorText[e]
	}
	if i := int(e) - 64; i >= 0 && i < len(errorText6) {
		return "header: " + errorText6[i]
	}
	return "header: unknown error"
}

// IPv6 errors. Kept apart from the list above so its values, which tests
// print, do not move.
const (
	// ErrIPv6Short: fewer than IPv6MinSize bytes (IPv6.Check).
	ErrIPv6Short Error = iota + 64
	// ErrIPv6Version: the version field is not 6 (IPv6.Check).
	ErrIPv6Version
	// ErrIPv6Truncated: the payload length runs past the packet
	// (IPv6.Check).
	ErrIPv6Truncated
	// ErrIPv6Option: an option runs past its header, or padding is
	// longer than 7 bytes or not zeros (WalkIPv6Options).
	ErrIPv6Option
	// ErrICMPv6Short: fewer than ICMPv6MinSize bytes (ICMPv6.Check).
	ErrICMPv6Short
	// ErrICMPv6Checksum: the checksum over the pseudo-header and the
	// message is wrong (ICMPv6.Check).
	ErrICMPv6Checksum
)

var errorText6 = [...]string{
	ErrIPv6Short - 64:      "ipv6: shorter than a header",
	ErrIPv6Version - 64:    "ipv6: version is not 6",
	ErrIPv6Truncated - 64:  "ipv6: payload length past the end of the packet",
	ErrIPv6Option - 64:     "ipv6: option past its header, or bad padding",
	ErrICMPv6Short - 64:    "icmpv6: shorter than a header",
	ErrICMPv6Checksum - 64: "icmpv6: bad checksum",
}
