// The exit statuses of ttmem, ttmemd and ttmem-emu: one scheme for the three (docs/tools.md), with usage
// and input errors numbered as sysexits.h numbers them, so scripts and CI can tell "you called it wrong"
// from "the input is wrong" from "the server is not there".
#pragma once

namespace ttmem::exit_status {

inline constexpr int ok = 0;
/// ttmem: ttmemd answered with an error. ttmemd: it stopped on an error (socket in use, no permission).
inline constexpr int failure = 1;
/// ttmem: ttmemd cannot be reached.
inline constexpr int unreachable = 2;
/// ttmem-emu: the runtime refused the script's request (out of memory, a circular-buffer clash).
inline constexpr int runtime_refused = 3;
/// A flag, argument or combination that is not one the command takes (EX_USAGE).
inline constexpr int usage = 64;
/// An input whose content is wrong: a capture's node, a script's line (EX_DATAERR).
inline constexpr int bad_input = 65;
/// An input file that cannot be opened (EX_NOINPUT).
inline constexpr int no_input = 66;

}  // namespace ttmem::exit_status
