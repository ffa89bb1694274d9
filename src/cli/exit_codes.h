// Exit codes that every command shares (1, 2), and the control-plane commands' (3, 4); a
// command's own (train's 3, which is local and never means unreachable; `--wait`'s 5) stay in
// its file. docs/reference/cli.md lists them all.
#pragma once

namespace forklift {

inline constexpr int kExitFailed = 1;  // the command failed, or the server refused it
inline constexpr int kExitUsage = 2;   // bad usage: flags, arguments, a repository not readable
// The control-plane commands' (admin_commands.h):
inline constexpr int kExitUnreachable = 3;     // the server could not be reached
inline constexpr int kExitNoAnswerInTime = 4;  // no answer in time: the change may have happened

}  // namespace forklift
