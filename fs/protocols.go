package fs

import (
	"fmt"
	"strings"
)

// qProtocols is the protocols file's type among the top-level files. It is
// placed well after the others so that new top-level files do not collide.
const qProtocols = 24

// protocolsFile is `protocols`, after Linux's /proc/net/protocols but with
// only the columns that describe memory (an extension): per protocol, the
// sockets in use (Linux's column: sock_prot_inuse_get, as sockstat's
// inuse), the pages charged to the pool (sk_memory_allocated),
// whether the protocol is under memory pressure ("yes", "no", or "NI" where
// it has no pressure state, as Linux prints for UDP) and the three
// thresholds of its *_mem sysctl, in pages:
//
//	protocol sockets  memory press   low pressure   high
//	TCP            3     120    no 277449   369935 554898
//	UDP            0       0    NI 554898   739867 1109796
//
// Tools such as `sockfs top` read the pressure state here: it has
// hysteresis (entered above tcp_mem[1], left below tcp_mem[0]), so it cannot
// be derived from sockstat's mem alone.
func (t *Tree) protocolsFile() Node {
	return newText(qpath(protoTop, 0, qProtocols), "protocols", 0444, func() string {
		n := t.stack.Net()
		var b strings.Builder
		fmt.Fprintf(&b, "%-8s %8s %8s %5s %8s %8s %8s\n", "protocol", "sockets", "memory", "press", "low", "pressure", "high")
		for _, p := range []struct {
			name string
			tcp  bool
		}{{"TCP", true}, {"UDP", false}} {
			pr := n.UDP
			if p.tcp {
				pr = n.TCP
			}
			press := "NI"
			if pr.HasMemoryPressure() {
				press = "no"
				if pr.UnderMemoryPressure() {
					press = "yes"
				}
			}
			fmt.Fprintf(&b, "%-8s %8d %8d %5s %8d %8d %8d\n", p.name, pr.Inuse(), pr.MemoryAllocated(),
				press, pr.MemLimit(0), pr.MemLimit(1), pr.MemLimit(2))
		}
		return b.String()
	}, nil)
}
