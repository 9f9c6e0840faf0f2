// peer.cpp -- see peer.hpp.  Why (bench/RESULTS.md): over loopback TCP,
// sendfile costs both ends together more protocol work per GB (softirq,
// backlog and ACK processing) than the copy path's two extra copies; over a
// Unix socket, which has no per-segment work, the copies sendfile saves win.
#include "peer.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "evsendfile.h"
#include "syscalls.h"

namespace evsf {

namespace {

// EVSENDFILE_FORCE_SENDFILE=1 is SF_FORCE_SENDFILE for every transfer; read
// once, when the library is loaded (as EVSENDFILE_NO_SENDFILE is).
const bool g_env_force_sendfile = [] {
    const char *v = std::getenv("EVSENDFILE_FORCE_SENDFILE");
    return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}();

bool is_loopback(const sockaddr_storage &a) {
    if (a.ss_family == AF_INET) {
        const auto &in = reinterpret_cast<const sockaddr_in &>(a);
        return (ntohl(in.sin_addr.s_addr) >> 24) == 127;
    }
    if (a.ss_family == AF_INET6) {
        const in6_addr &ip = reinterpret_cast<const sockaddr_in6 &>(a).sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(&ip) || (IN6_IS_ADDR_V4MAPPED(&ip) && ip.s6_addr[12] == 127);
    }
    return false;
}

bool same_ip(const sockaddr_storage &a, const sockaddr_storage &b) {
    if (a.ss_family != b.ss_family) return false;
    if (a.ss_family == AF_INET)
        return reinterpret_cast<const sockaddr_in &>(a).sin_addr.s_addr ==
               reinterpret_cast<const sockaddr_in &>(b).sin_addr.s_addr;
    return std::memcmp(&reinterpret_cast<const sockaddr_in6 &>(a).sin6_addr,
                       &reinterpret_cast<const sockaddr_in6 &>(b).sin6_addr, sizeof(in6_addr)) == 0;
}

}  // namespace

int ask_peer(int sock, unsigned flags, BodyMethod &out) {
    out = BodyMethod::Sendfile;
    if ((flags & (SF_FORCE_SENDFILE | SF_TLS)) || g_env_force_sendfile) return 0;
    sockaddr_storage peer;
    socklen_t len = sizeof peer;
    std::memset(&peer, 0, sizeof peer);
    if (evsf_sys.getpeername(sock, reinterpret_cast<sockaddr *>(&peer), &len) != 0) return -errno;
    if (peer.ss_family != AF_INET && peer.ss_family != AF_INET6) return 0;
    if (is_loopback(peer)) {
        out = BodyMethod::Copy;
        return 0;
    }
    sockaddr_storage self;
    len = sizeof self;
    std::memset(&self, 0, sizeof self);
    if (evsf_sys.getsockname(sock, reinterpret_cast<sockaddr *>(&self), &len) != 0) return -errno;
    if (same_ip(peer, self)) out = BodyMethod::Copy;
    return 0;
}

BodyMethod method_for_peer(int sock, unsigned flags) {
    BodyMethod m;
    return ask_peer(sock, flags, m) == 0 ? m : BodyMethod::Sendfile;
}

}  // namespace evsf
