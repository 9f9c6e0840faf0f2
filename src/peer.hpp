// peer.hpp -- which method moves a file's body fastest to this socket's peer
// (measured: bench/RESULTS.md, "Sendfile or copy, per peer").
#pragma once

namespace evsf {

enum class BodyMethod : unsigned char { Sendfile, Copy };

// For a regular file's body too big for the small path, once sendfile is
// allowed at all (Job::sendfile_allowed):
//   Copy      the peer is on this host over TCP: a loopback address
//             (127/8, ::1, ::ffff:127/104) or the socket's own local address
//             (a connection to one of the host's addresses goes over lo);
//   Sendfile  everything else: a Unix socket, a remote peer, SF_FORCE_SENDFILE
//             or SF_TLS in `flags` (kTLS was not measured), env
//             EVSENDFILE_FORCE_SENDFILE=1 (read at load), and getpeername or
//             getsockname failing (the method the library always used).
// One getpeername (plus one getsockname for a non-loopback TCP peer),
// through the syscall seam.
BodyMethod method_for_peer(int sock, unsigned flags);

// The same rule, with the syscalls' failures reported (-errno; `out` is then
// Sendfile) instead of taken as Sendfile: for sf_peer_flags.
int ask_peer(int sock, unsigned flags, BodyMethod &out);

}  // namespace evsf
