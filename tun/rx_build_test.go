package tun

import "sockfs/skb"

// build puts pkt in r.buf as a read would and builds its skb (buildRead):
// the receive path's layout and charging without a device.
func (r *rxState) build(pkt []byte, vh *vnetHdr) *skb.SKB {
	r.buf.vnet = false
	r.buf.scatter(pkt)
	return r.buildRead(vh)
}

// scatter copies pkt into the buffers as a read of it would have left it,
// for build.
func (r *rxBuf) scatter(pkt []byte) {
	r.prepare()
	k := copy(r.head[:], pkt)
	for i := 0; i < r.npg && k < len(pkt); i++ {
		buf := r.pages[i].Buf
		if i == 0 {
			buf = buf[r.off+rxHeadLen:]
		}
		k += copy(buf, pkt[k:])
	}
	r.n = len(pkt)
}
