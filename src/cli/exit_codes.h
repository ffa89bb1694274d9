// Exit codes that every command shares; a command's own (train's 3, `--wait`'s 5) stay in its
// file. docs/reference/cli.md lists them all.
#pragma once

namespace forklift {

inline constexpr int kExitFailed = 1;  // the command failed, or the server refused it
inline constexpr int kExitUsage = 2;   // bad flags or arguments

}  // namespace forklift
