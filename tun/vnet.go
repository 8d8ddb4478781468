package tun

import "encoding/binary"

// vnetHdrLen is sizeof(struct virtio_net_hdr): what every read and write of
// a device opened with IFF_VNET_HDR starts with (TUNSETVNETHDRSZ may make
// it longer; we keep the default and set it explicitly).
const vnetHdrLen = 10

// vnetHdr is struct virtio_net_hdr (include/uapi/linux/virtio_net.h): how
// the kernel describes an offloaded packet to a TUN reader, and how a
// writer asks the kernel to finish one. Its fields are little-endian, as
// TUN uses them on a little-endian host (tun_is_little_endian; a big-endian
// host would need TUNSETVNETLE, which the stack does not support).
type vnetHdr struct {
	flags      uint8  // VIRTIO_NET_HDR_F_NEEDS_CSUM, _DATA_VALID
	gsoType    uint8  // VIRTIO_NET_HDR_GSO_NONE, _TCPV4, ... | _ECN
	hdrLen     uint16 // headers' length, a hint (we find it from the packet)
	gsoSize    uint16 // the MSS a super-packet is cut into
	csumStart  uint16 // from the start of the packet (the IP header)
	csumOffset uint16 // of the checksum field, from csumStart
}

// decode reads the header from the first vnetHdrLen bytes of p.
func (h *vnetHdr) decode(p []byte) {
	_ = p[vnetHdrLen-1]
	h.flags = p[0]
	h.gsoType = p[1]
	h.hdrLen = binary.LittleEndian.Uint16(p[2:4])
	h.gsoSize = binary.LittleEndian.Uint16(p[4:6])
	h.csumStart = binary.LittleEndian.Uint16(p[6:8])
	h.csumOffset = binary.LittleEndian.Uint16(p[8:10])
}

// encode writes the header into the first vnetHdrLen bytes of p.
func (h *vnetHdr) encode(p []byte) {
	_ = p[vnetHdrLen-1]
	p[0] = h.flags
	p[1] = h.gsoType
	binary.LittleEndian.PutUint16(p[2:4], h.hdrLen)
	binary.LittleEndian.PutUint16(p[4:6], h.gsoSize)
	binary.LittleEndian.PutUint16(p[6:8], h.csumStart)
	binary.LittleEndian.PutUint16(p[8:10], h.csumOffset)
}
