//go:build race || skbdebug

package skb

// debug turns on double-free and use-after-free detection. It is on under the
// race detector (so `go test -race` catches misuse) and with -tags skbdebug.
const debug = true

const poisonByte = 0x6b // POISON_FREE, as in the kernel's slab debugging

func poison(b []byte) {
	for i := range b {
		b[i] = poisonByte
	}
}
