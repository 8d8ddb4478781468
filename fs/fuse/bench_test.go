package fuse

import (
	"syscall"
	"testing"
)

// BenchmarkSmallRequests: a 1-byte write and a 1-byte read of a mounted
// file, the two FUSE requests of a request/response round trip through a
// data file, with the file answering at once: what the server and the
// kernel's request passing cost, without a stack behind them.
func BenchmarkSmallRequests(b *testing.B) {
	tree, fd := mountSizeTree(b)
	var one [1]byte
	b.ResetTimer()
	for i := range b.N {
		if n, err := syscall.Write(fd, one[:]); n != 1 || err != nil {
			b.Fatalf("write: %d, %v", n, err)
		}
		if n, err := syscall.Read(fd, one[:]); n != 1 || err != nil {
			b.Fatalf("read: %d, %v", n, err)
		}
		if i%1000 == 0 {
			tree.reset()
		}
	}
}
