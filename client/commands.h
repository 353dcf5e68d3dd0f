// attnctl's commands: each builds its requests from Flags, calls the server
// through a stub (every call with the --timeout deadline) and returns the
// text to print. The stub is an interface so tests can call an in-process
// server.
//
// Called from one thread at a time per stub call; no shared state.
#ifndef ATTNSERVE_CLIENT_COMMANDS_H_
#define ATTNSERVE_CLIENT_COMMANDS_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "client/cli.h"
#include "grpcpp/grpcpp.h"
#include "proto/attnserve.grpc.pb.h"

namespace attnserve::client {

// Reads what the connection flags name, before Connect(flags->channel): the
// --ca/--cert/--key PEM files into flags->channel, the bearer token
// (--token-file, else $ATTNSERVE_TOKEN) into flags->token. INVALID_ARGUMENT
// naming the flag when a file cannot be read.
absl::Status LoadConnectionFiles(Flags* flags);

// Runs flags.command. On success *out holds what to print (and --html has
// been written). A failed call returns the server's status (code and
// message as sent); a response that does not match the request returns
// DATA_LOSS "bad response: ..."; INVALID_ARGUMENT for input the client can
// check (e.g. --query names no token of the text).
absl::Status RunCommand(const Flags& flags, v1::Encoder::StubInterface& stub,
                        std::string* out);

}  // namespace attnserve::client

#endif  // ATTNSERVE_CLIENT_COMMANDS_H_
