// Where ttmemd listens and where clients and tools look for it: the one definition.
//
// A host service (root) listens on /run/ttmem/ttmemd.sock, in a root-owned directory nobody else can
// write, so no other user can squat the name. A user's own server listens in $XDG_RUNTIME_DIR (or a
// private /tmp/ttmem-UID directory). Clients take $TTMEM_SOCKET, else their own server if one runs, else
// the host service. Clients also check who listens (see expected_server_uid).
#pragma once

#include <sys/types.h>

#include <string>

namespace ttmem {

/// The host service's socket.
inline constexpr const char* kSystemSocketPath = "/run/ttmem/ttmemd.sock";

/// Where a ttmemd started by this user listens by default: $TTMEM_SOCKET, else kSystemSocketPath for
/// root, else $XDG_RUNTIME_DIR/ttmemd.sock, else /tmp/ttmem-UID/ttmemd.sock.
std::string server_socket_path();

/// Where clients and tools connect by default: $TTMEM_SOCKET, else this user's own server's socket when
/// it exists, else the host service's when it exists, else this user's default (for the error message).
std::string client_socket_path();

/// Whether a server running as `server_uid` may receive this process's reports: root (the host
/// service), this process's own user, or the uid in $TTMEM_SERVER_UID. Anyone else listening on the path
/// squats it.
bool trusted_server_uid(uid_t server_uid);

/// "the socket is served by uid N, not by root or you (uid M): ..." — what to tell the user.
std::string untrusted_server_message(const std::string& path, uid_t server_uid);

}  // namespace ttmem
