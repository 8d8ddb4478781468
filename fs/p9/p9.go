// Package p9 serves a sockfs tree (package sockfs/fs) over 9P, and imports
// one served elsewhere (Remote) so that the FUSE frontend can mount it
// again (sockfs import).
//
// # The server
//
// One server core (conn) owns each client connection: it reads the frames
// itself, runs each request with a context that a Tflush for its tag, a
// clunk of its fid or the client's disconnection cancels, and bounds what
// one client may hold (Options.MaxFids, MaxRequests, MaxBytes). It serves
// the same tree in the three dialects Tversion may ask for:
//
//   - 9P2000 (Plan 9, 9front, Inferno, plan9port): errors are Rerror with
//     Plan 9's strings ("connection refused", "unknown control request",
//     "file does not exist"); stat carries Plan 9 modes and user names;
//   - 9P2000.u (Linux v9fs's default): Rerror with the string and the
//     errno, stat with the numeric ids;
//   - 9P2000.L (Linux v9fs, diod, hugelgupf/p9): Rlerror with the errno.
//
// The protocol is kept strictly: an msize below 256 is refused, nothing
// but Tversion is served before a version is agreed, a walk that fails
// after its first name answers the qids walked so far, ".." walks up (not
// above the attach root), a newfid in use is an error, and reading or
// writing a fid not opened for it is EBADF ("fid not open for writing").
//
// Requests that may block in the tree (Topen, Tlopen, Tread, Twrite) run
// in goroutines of their own, so a blocked read never stalls other tags;
// the rest are answered in message order by the reading goroutine. A
// Tflush cancels its old request, whose blocking call then returns EINTR
// having consumed nothing (or returns what it already had), lets that
// reply go out, and only then answers Rflush, as flush(5) wants. Tauth is
// answered "authentication not required" (ENOENT, which diod's clients
// check for). Opens return iounit 0 so clients do msize-sized I/O. Nothing
// in the tree can be created, renamed or removed (Plan 9's devip says
// permission denied); Tremove still clunks. Twstat and Tsetattr change a
// node's owner and mode through fs.Wstatter (a conversation's ctl or data,
// by its owner or root, as Plan 9's ipwstat; elsewhere permission denied);
// renames are refused, and times, length and group are accepted and
// ignored, as on the FUSE mount.
//
// Linux v9fs clients should mount with cache=none and open stream files
// (data, listen) with O_NONBLOCK to get prompt short reads; the server
// never turns O_NONBLOCK into EAGAIN.
//
// The codec is this package's own (proto.go): no well-kept Go library
// covers the three dialects together with exported message types
// (hugelgupf/p9 keeps its encoders unexported and speaks only .L;
// 9fans.net/go/plan9 speaks only 9P2000), and 9P's fields are few enough
// that one decoder with a sticky error and one encoder serve all three.
package p9
