// attnctl: command-line client for attnserve. main() only: the flags are
// parsed by client/cli.h, the commands live in client/commands.h.
//
// Exit status: 0 on success; 1 when a call fails ("attnctl: CODE: message"
// on stderr, CODE as in google.rpc.Code, and nothing on stdout); 2 on a bad
// command line, or a --ca/--cert/--key/--token-file that cannot be read.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/bench.h"
#include "client/channel.h"
#include "client/cli.h"
#include "client/commands.h"

int main(int argc, char** argv) {
  using attnserve::client::Flags;
  const std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<Flags> flags = attnserve::client::ParseFlags(args);
  if (!flags.ok()) {
    std::fprintf(stderr, "attnctl: %s\nRun 'attnctl --help' for usage.\n",
                 std::string(flags.status().message()).c_str());
    return 2;
  }
  if (flags->help) {
    std::fputs(attnserve::client::kUsage, stdout);
    return 0;
  }
  // What the connection flags name: PEM files and the token.
  if (absl::Status s = attnserve::client::LoadConnectionFiles(&*flags);
      !s.ok()) {
    std::fprintf(stderr, "attnctl: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  auto stub = attnserve::v1::Encoder::NewStub(
      attnserve::client::Connect(flags->channel));
  std::string out;
  // bench makes its own channels; its progress line only on a terminal.
  const absl::Status status =
      flags->command == "bench"
          ? attnserve::client::RunBench(
                *flags, isatty(STDERR_FILENO) ? stderr : nullptr, &out)
          : attnserve::client::RunCommand(*flags, *stub, &out);
  if (status.ok()) std::fputs(out.c_str(), stdout);
  if (!status.ok()) {
    std::fprintf(stderr, "attnctl: %s: %s\n",
                 absl::StatusCodeToString(status.code()).c_str(),
                 std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
