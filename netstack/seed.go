package netstack

import "time"

// nanotimeSeed seeds an unseeded stack from the wall clock.
func nanotimeSeed() int64 { return time.Now().UnixNano() }
