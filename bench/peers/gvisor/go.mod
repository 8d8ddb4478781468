module sockfs/bench/peers/gvisor

go 1.26.0

require gvisor.dev/gvisor v0.0.0-20250911055229-61a46406f068

require (
	golang.org/x/sys v0.49.0
	sockfs v0.0.0
)

require (
	github.com/google/btree v1.1.2 // indirect
	golang.org/x/time v0.7.0 // indirect
)

replace sockfs => ../../..
