// socket_claims.hpp -- at most one job per socket.  A second transfer on a
// socket whose first is still running would interleave their bytes; the
// engine claims the socket when a job is created and lets go when the job
// finishes, fails or is freed.  Process-wide, lock-free, one atomic byte per
// descriptor in static storage.
#pragma once

namespace evsf {

// 0 when claimed, -EBUSY when another job holds it.  Descriptors past the
// table (>= 1 << 20) are not tracked: always 0.
int claim_socket(int fd) noexcept;
void release_socket(int fd) noexcept;

}  // namespace evsf
