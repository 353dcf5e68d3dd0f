// Bearer tokens (server/auth.cc): the tokens file's parsing; an in-process
// server with --auth_tokens_file answering no token, a wrong token, a right
// one and one written with trailing whitespace; health and reflection open;
// every other service reflection lists refusing a call without a token (so a
// service added later without the check fails here); UNAUTHENTICATED counted
// in attnserve_requests_total; a real attnserve re-reading the file on
// SIGHUP; and attnctl and the Python example sending the token from a file or
// $ATTNSERVE_TOKEN.
#include <signal.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli.h"
#include "client/commands.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/auth.h"
#include "tests/metrics_testing.h"
#include "tests/process_testing.h"
#include "tests/raw_call_testing.h"
#include "tests/reflection_testing.h"
#include "tests/server_testing.h"

namespace attnserve::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Metadata = std::vector<std::pair<std::string, std::string>>;

constexpr char kRightToken[] = "right-token-0123";
// Written into the file with trailing blanks and a CRLF ending.
constexpr char kSecondToken[] = "second-token-4567";
constexpr char kWrongToken[] = "wrong-token-89ab";

// ---- the tokens file --------------------------------------------------------

TEST(TokenSetTest, OneTokenPerLineTrimmedBlankLinesSkipped) {
  absl::StatusOr<TokenSet> set =
      TokenSet::Parse("alpha\n  beta \r\n\n\t\ngamma\t", "tokens.txt");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->size(), 3u);
  EXPECT_TRUE(set->Contains("alpha"));
  EXPECT_TRUE(set->Contains("beta"));
  EXPECT_TRUE(set->Contains("gamma"));
  EXPECT_FALSE(set->Contains("beta "));
  EXPECT_FALSE(set->Contains("alph"));
  EXPECT_FALSE(set->Contains(""));
}

TEST(TokenSetTest, AFileWithoutTokensIsRefused) {
  absl::StatusOr<TokenSet> set = TokenSet::Parse(" \n\n\t\n", "tokens.txt");
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(set.status().message()),
              HasSubstr("tokens.txt holds no token"));
}

TEST(TokenSetTest, AnUnsendableTokenNamesItsLineNotItself) {
  absl::StatusOr<TokenSet> set =
      TokenSet::Parse("fine\nsecr\x01t-value\n", "tokens.txt");
  ASSERT_FALSE(set.ok());
  const std::string message(set.status().message());
  EXPECT_THAT(message, HasSubstr("tokens.txt line 2"));
  EXPECT_THAT(message, Not(HasSubstr("secr")));
}

// ---- a server with tokens ---------------------------------------------------

ServerOptions AuthOptions(const std::string& tokens_file) {
  ServerOptions options = TestOptions();
  options.auth_tokens_file = tokens_file;
  options.log_requests = false;
  return options;
}

class AuthTest : public SharedServerTest {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("attnserve_auth_");
    const std::string tokens = dir_->File("tokens.txt");
    WriteWholeFile(tokens,
                   absl::StrCat(kRightToken, "\n", kSecondToken, "  \t\r\n\n"));
    StartSuite(AuthOptions(tokens));
  }
  static void TearDownTestSuite() {
    SharedServerTest::TearDownTestSuite();
    delete dir_;
    dir_ = nullptr;
  }

  // GetModelInfo with `metadata`.
  grpc::Status Info(const Metadata& metadata) {
    grpc::ClientContext context;
    SetDeadline(&context);
    for (const auto& [key, value] : metadata) context.AddMetadata(key, value);
    v1::ModelInfo info;
    return stub_->GetModelInfo(&context, v1::GetModelInfoRequest(), &info);
  }

  static Metadata Bearer(const std::string& token) {
    return {{"authorization", "Bearer " + token}};
  }

  static inline TempDir* dir_ = nullptr;
};

TEST_F(AuthTest, NoTokenIsUnauthenticatedNamingTheHeader) {
  grpc::Status status = Info({});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(),
              HasSubstr("\"authorization: Bearer <token>\""));
}

TEST_F(AuthTest, AWrongTokenIsUnauthenticatedAndNotEchoed) {
  grpc::Status status = Info(Bearer(kWrongToken));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), HasSubstr("\"authorization\""));
  EXPECT_THAT(status.error_message(), Not(HasSubstr(kWrongToken)));
  // A prefix or an extension of a right token is just as wrong.
  EXPECT_EQ(Info(Bearer("right-token")).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Info(Bearer(absl::StrCat(kRightToken, "x"))).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(AuthTest, OtherSchemesAndDuplicatesAreUnauthenticated) {
  grpc::Status basic = Info({{"authorization", "Basic dXNlcjpwYXNz"}});
  EXPECT_EQ(basic.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(basic.error_message(), HasSubstr("\"Bearer <token>\""));
  EXPECT_THAT(basic.error_message(), Not(HasSubstr("dXNlcjpwYXNz")));
  grpc::Status two =
      Info({{"authorization", absl::StrCat("Bearer ", kRightToken)},
            {"authorization", "Bearer other"}});
  EXPECT_EQ(two.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(two.error_message(), HasSubstr("more than one"));
}

TEST_F(AuthTest, ARightTokenIsServedByEveryMethod) {
  const Metadata bearer = Bearer(kRightToken);
  EXPECT_TRUE(Info(bearer).ok());
  // RFC 7235: the scheme is case-insensitive.
  EXPECT_TRUE(
      Info({{"authorization", absl::StrCat("bearer ", kRightToken)}}).ok());
  auto call = [&](auto method, const auto& request, auto* response) {
    grpc::ClientContext context;
    SetDeadline(&context, 60);
    for (const auto& [key, value] : bearer) context.AddMetadata(key, value);
    return ((*stub_).*method)(&context, request, response);
  };
  v1::EncodeRequest encode;
  AddSequence(Golden("len5"), &encode);
  v1::EncodeResponse encoded;
  EXPECT_TRUE(call(&v1::Encoder::Stub::Encode, encode, &encoded).ok());
  v1::TokenizeRequest tokenize;
  tokenize.add_sequences()->set_text("the cat");
  v1::TokenizeResponse tokens;
  EXPECT_TRUE(call(&v1::Encoder::Stub::Tokenize, tokenize, &tokens).ok());
  v1::RankHeadsRequest rank;
  AddSequence(Golden("len1"), &rank);
  v1::RankHeadsResponse ranking;
  EXPECT_TRUE(call(&v1::Encoder::Stub::RankHeads, rank, &ranking).ok());
}

TEST_F(AuthTest, ATokenWrittenWithTrailingWhitespaceWorks) {
  EXPECT_TRUE(Info(Bearer(kSecondToken)).ok());
  // The client's own surrounding blanks do not matter either.
  EXPECT_TRUE(
      Info({{"authorization", absl::StrCat("Bearer  ", kSecondToken, " ")}})
          .ok());
}

TEST_F(AuthTest, HealthAndReflectionAnswerWithoutAToken) {
  auto channel = NewChannel(server_->port());
  grpc::health::v1::HealthCheckResponse health;
  ASSERT_TRUE(HealthCheck(channel, "", &health).ok());
  EXPECT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  ReflectionClient reflection(channel);
  absl::StatusOr<std::vector<std::string>> services = reflection.ListServices();
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_TRUE(reflection.Describe("attnserve.v1.Encoder").ok());
}

// Every method of every listed service but health and reflection, called
// without a token (an empty message is a valid request of any type): a
// service or method added later that forgets the check fails here. A method
// declared in a .proto but not served yet answers UNIMPLEMENTED, which gives
// nothing away; once it is served, it must answer UNAUTHENTICATED.
TEST_F(AuthTest, EveryOtherServiceRefusesACallWithoutAToken) {
  auto channel = NewChannel(server_->port());
  ReflectionClient reflection(channel);
  absl::StatusOr<std::vector<std::string>> services = reflection.ListServices();
  ASSERT_TRUE(services.ok()) << services.status();
  int checked = 0;
  std::vector<std::string> not_served;
  for (const std::string& name : *services) {
    if (name == kHealthService || name == kReflectionService) continue;
    absl::StatusOr<const google::protobuf::ServiceDescriptor*> service =
        reflection.Describe(name);
    ASSERT_TRUE(service.ok()) << service.status();
    for (int m = 0; m < (*service)->method_count(); ++m) {
      const std::string path =
          absl::StrCat("/", name, "/", (*service)->method(m)->name());
      SCOPED_TRACE(path);
      for (const Metadata& metadata : {Metadata{}, Bearer(kWrongToken)}) {
        const grpc::StatusCode code =
            RawCall(channel, path, {""}, nullptr, metadata).error_code();
        if (code == grpc::StatusCode::UNIMPLEMENTED) {
          not_served.push_back(path);
          continue;
        }
        EXPECT_EQ(code, grpc::StatusCode::UNAUTHENTICATED);
        ++checked;
      }
    }
  }
  // attnserve.v1.Encoder's four and inference.GRPCInferenceService's six,
  // each without a token and with a wrong one.
  EXPECT_GE(checked, 2 * 10)
      << "not served: " << absl::StrJoin(not_served, ", ");
}

TEST_F(AuthTest, AttnctlSendsTheTokenFromAFile) {
  const std::string file = dir_->File("client-token.txt");
  WriteWholeFile(file, absl::StrCat(kSecondToken, "\n"));
  absl::StatusOr<client::Flags> flags = client::ParseFlags(
      {"info", "--target", absl::StrCat("127.0.0.1:", server_->port()),
       "--token-file", file});
  ASSERT_TRUE(flags.ok()) << flags.status();
  ASSERT_TRUE(client::LoadConnectionFiles(&*flags).ok());
  EXPECT_EQ(flags->token, kSecondToken);
  auto stub = v1::Encoder::NewStub(client::Connect(flags->channel));
  std::string out;
  absl::Status status = client::RunCommand(*flags, *stub, &out);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_THAT(out, HasSubstr("tiny_bert"));
  // Without it: the server's message, as attnctl prints it.
  flags->token.clear();
  status = client::RunCommand(*flags, *stub, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(AuthTest, AttnctlReadsAttnserveTokenFromTheEnvironment) {
  const std::string target = absl::StrCat("127.0.0.1:", server_->port());
  CommandResult with =
      RunShell(absl::StrCat("ATTNSERVE_TOKEN=", kRightToken, " ", ATTNCTL_BIN,
                            " --target ", target, " info"));
  EXPECT_EQ(with.status, 0) << with.output;
  CommandResult without = RunShell(absl::StrCat(
      "env -u ATTNSERVE_TOKEN ", ATTNCTL_BIN, " --target ", target, " info"));
  EXPECT_EQ(without.status, 1);
  EXPECT_THAT(without.output, HasSubstr("attnctl: UNAUTHENTICATED: "));
}

TEST_F(AuthTest, PythonExampleSendsTheTokenFromAFileOrTheEnvironment) {
  if (const std::string why = PythonExampleMissing(); !why.empty()) {
    GTEST_SKIP() << why;
  }
  const std::string target = absl::StrCat("127.0.0.1:", server_->port());
  const std::string python = absl::StrCat(
      "/usr/bin/python3 " ATTNSERVE_SOURCE_DIR "/client/python_example.py",
      " --target ", target, " --text 'the cat'");
  CommandResult py_env =
      RunShell(absl::StrCat("ATTNSERVE_TOKEN=", kRightToken, " ", python));
  EXPECT_EQ(py_env.status, 0) << py_env.output;
  const std::string file = dir_->File("python-token.txt");
  WriteWholeFile(file, kSecondToken);
  CommandResult py_file = RunShell(absl::StrCat(
      "env -u ATTNSERVE_TOKEN ", python, " --token_file ", ShellQuote(file)));
  EXPECT_EQ(py_file.status, 0) << py_file.output;
  CommandResult py_none =
      RunShell(absl::StrCat("env -u ATTNSERVE_TOKEN ", python));
  EXPECT_EQ(py_none.status, 1);
  EXPECT_THAT(py_none.output, HasSubstr("UNAUTHENTICATED"));
}

// Its own server: one with metrics takes 2 s to stop (civetweb), so the
// shared suite runs without.
TEST(AuthMetricsTest, RequestsTotalCountsUnauthenticated) {
  TempDir dir("attnserve_auth_");
  WriteWholeFile(dir.File("tokens.txt"), kRightToken);
  ServerOptions options = AuthOptions(dir.File("tokens.txt"));
  options.metrics_address = "127.0.0.1:0";
  std::unique_ptr<Server> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  auto stub = v1::Encoder::NewStub(NewChannel(server->port()));
  auto info = [&](const Metadata& metadata) {
    grpc::ClientContext context;
    SetDeadline(&context);
    for (const auto& [key, value] : metadata) context.AddMetadata(key, value);
    v1::ModelInfo out;
    return stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &out);
  };
  EXPECT_FALSE(info({}).ok());
  EXPECT_FALSE(
      info({{"authorization", absl::StrCat("Bearer ", kWrongToken)}}).ok());
  EXPECT_FALSE(info({{"authorization", "Basic x"}}).ok());
  EXPECT_TRUE(
      info({{"authorization", absl::StrCat("Bearer ", kRightToken)}}).ok());
  auto count = [&](const char* code) {
    return Value(Scrape(server->metrics_port()), "attnserve_requests_total",
                 {{"method", "attnserve.v1.Encoder/GetModelInfo"},
                  {"code", code}})
        .value_or(0);
  };
  // The interceptor records a call before its status goes out: a client
  // that has its answer can count on the metrics.
  EXPECT_EQ(count("UNAUTHENTICATED"), 3);
  EXPECT_EQ(count("OK"), 1);
}

// ---- a real attnserve -------------------------------------------------------

TEST(AuthProcessTest, SighupReloadsTheTokens) {
  TempDir dir("attnserve_auth_");
  const std::string tokens = dir.File("tokens.txt");
  WriteWholeFile(tokens, "old-token\n");
  std::unique_ptr<AttnserveProcess> server = AttnserveProcess::Start(
      {"--auth_tokens_file=" + tokens, "--log_requests=false"},
      dir.File("stderr.log"));
  ASSERT_NE(server, nullptr);
  auto stub = v1::Encoder::NewStub(NewChannel(server->port()));
  auto info = [&](const std::string& token) {
    grpc::ClientContext context;
    SetDeadline(&context);
    context.AddMetadata("authorization", "Bearer " + token);
    v1::ModelInfo out;
    return stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &out)
        .error_code();
  };
  EXPECT_EQ(info("old-token"), grpc::StatusCode::OK);
  EXPECT_EQ(info("new-token"), grpc::StatusCode::UNAUTHENTICATED);

  WriteWholeFile(tokens, "new-token\nnewer-token\n");
  server->child().Signal(SIGHUP);
  ASSERT_TRUE(server->child().WaitForOutput(
      "attnserve: SIGHUP: 2 tokens loaded from .*tokens\\.txt\n",
      absl::Seconds(20)))
      << server->Output();
  EXPECT_EQ(info("new-token"), grpc::StatusCode::OK);
  EXPECT_EQ(info("newer-token"), grpc::StatusCode::OK);
  EXPECT_EQ(info("old-token"), grpc::StatusCode::UNAUTHENTICATED);

  // A broken file keeps the tokens in force.
  WriteWholeFile(tokens, "\n\n");
  server->child().Signal(SIGHUP);
  ASSERT_TRUE(server->child().WaitForOutput(
      "attnserve: SIGHUP: tokens not reloaded \\(.*holds no token.*\\)\n",
      absl::Seconds(20)))
      << server->Output();
  EXPECT_EQ(info("new-token"), grpc::StatusCode::OK);
  // Closed first: gRPC's shutdown waits seconds for a connected client to
  // answer its GOAWAY.
  stub.reset();
  EXPECT_EQ(server->Stop(), 0) << server->Output();
  EXPECT_THAT(server->Output(), Not(HasSubstr("new-token")));
}

TEST(AuthProcessTest, AMissingTokensFileFailsTheStart) {
  TempDir dir("attnserve_auth_");
  ChildProcess child(
      {ATTNSERVE_BIN, "--model=" ATTNSERVE_TEST_DATA "/tiny_bert",
       "--address=127.0.0.1:0", "--auth_tokens_file=" + dir.File("absent.txt")},
      dir.File("stderr.log"));
  EXPECT_EQ(child.Wait(absl::Seconds(60)), 1);
  EXPECT_THAT(child.Output(), HasSubstr("attnserve: --auth_tokens_file: "));
  EXPECT_THAT(child.Output(), HasSubstr("absent.txt"));
}

}  // namespace
}  // namespace attnserve::testing
