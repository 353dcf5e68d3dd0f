// TLS and mTLS (server/tls.cc) with certificates made by openssl at test
// time: a CA, a server certificate for 127.0.0.1 and localhost, a client
// certificate, and a second CA with its own server and client certificates.
// A TLS call succeeds; a plaintext client, a client trusting another CA and
// a wrong server name fail; under mTLS a client without a certificate and
// one whose certificate another CA signed are refused; a certificate rotated
// on disk is served within the refresh interval; files that cannot work stop
// the start with a message naming the flag. attnctl and the Python example
// connect with --tls, --ca, --cert/--key and --server-name.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/cli.h"
#include "client/commands.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/tls.h"
#include "tests/process_testing.h"
#include "tests/server_testing.h"

namespace attnserve::testing {
namespace {

using ::testing::HasSubstr;

// The certificates of one test binary run, made once.
class Certificates {
 public:
  // Made on first use; the directory goes when the test binary exits.
  static Certificates& Get() {
    static Certificates certificates;
    return certificates;
  }
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  // dir/NAME.pem, dir/NAME.key
  std::string Pem(const std::string& name) const {
    return dir_.File(name + ".pem");
  }
  std::string Key(const std::string& name) const {
    return dir_.File(name + ".key");
  }
  std::string dir() const { return dir_.path(); }

 private:
  Certificates() : dir_("attnserve_tls_") {
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1";
    WriteWholeFile(dir_.File("server.ext"),
                   "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                   "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n");
    WriteWholeFile(dir_.File("client.ext"),
                   "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n");
    std::vector<std::string> commands;
    for (const char* ca : {"ca1", "ca2"}) {
      commands.push_back(
          absl::StrCat("openssl req -x509 ", ec, " -nodes -days 2 -keyout ", ca,
                       ".key -out ", ca, ".pem -subj /CN=attnserve-test-", ca,
                       " -addext basicConstraints=critical,CA:TRUE"
                       " -addext keyUsage=critical,keyCertSign,cRLSign"));
    }
    // name, CA, extensions, common name
    const char* leaves[][4] = {
        {"server", "ca1", "server.ext", "attnserve-server"},
        {"rotated", "ca2", "server.ext", "attnserve-server-rotated"},
        {"client", "ca1", "client.ext", "attnserve-client"},
        {"stranger", "ca2", "client.ext", "attnserve-stranger"}};
    for (const auto& [name, ca, ext, cn] : leaves) {
      commands.push_back(absl::StrCat("openssl req -new ", ec,
                                      " -nodes -keyout ", name, ".key -out ",
                                      name, ".csr -subj /CN=", cn));
      commands.push_back(absl::StrCat(
          "openssl x509 -req -in ", name, ".csr -CA ", ca, ".pem -CAkey ", ca,
          ".key -CAcreateserial -days 2 -out ", name, ".pem -extfile ", ext));
    }
    for (const std::string& command : commands) {
      CommandResult r = RunShell(
          absl::StrCat("cd ", ShellQuote(dir_.path()), " && ", command));
      if (r.status != 0) {
        error_ = absl::StrCat(command, " failed:\n", r.output);
        return;
      }
    }
  }

  TempDir dir_;
  std::string error_;
};

std::shared_ptr<grpc::Channel> TlsChannel(int port, const std::string& ca,
                                          const std::string& client = "",
                                          const std::string& name = "") {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadWholeFile(Certificates::Get().Pem(ca));
  if (!client.empty()) {
    ssl.pem_cert_chain = ReadWholeFile(Certificates::Get().Pem(client));
    ssl.pem_private_key = ReadWholeFile(Certificates::Get().Key(client));
  }
  grpc::ChannelArguments args;
  // A connection of its own for every channel: a test that rotates the
  // server's certificate needs new handshakes.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  if (!name.empty()) args.SetSslTargetNameOverride(name);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::SslCredentials(ssl), args);
}

// GetModelInfo with a 10 s deadline; *common_name gets the server
// certificate's CN when the call succeeds.
grpc::Status Info(const std::shared_ptr<grpc::Channel>& channel,
                  std::string* common_name = nullptr) {
  auto stub = v1::Encoder::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(&context, 10);
  v1::ModelInfo info;
  grpc::Status status =
      stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info);
  if (status.ok() && common_name != nullptr) {
    std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
    for (const grpc::string_ref& cn :
         auth->FindPropertyValues("x509_common_name")) {
      *common_name = std::string(cn.data(), cn.size());
    }
  }
  return status;
}

ServerOptions TlsServerOptions(bool mtls) {
  ServerOptions options = TestOptions();
  options.log_requests = false;
  options.tls.cert_file = Certificates::Get().Pem("server");
  options.tls.key_file = Certificates::Get().Key("server");
  if (mtls) options.tls.client_ca_file = Certificates::Get().Pem("ca1");
  options.tls.refresh_interval = absl::Seconds(1);
  return options;
}

class TlsTest : public SharedServerTest {
 protected:
  static void SetUpTestSuite() {
    if (!Certificates::Get().ok()) return;  // SetUp fails on server_ == null
    StartSuite(TlsServerOptions(/*mtls=*/false));
  }
  void SetUp() override {
    ASSERT_TRUE(Certificates::Get().ok()) << Certificates::Get().error();
    SharedServerTest::SetUp();
  }
};

TEST_F(TlsTest, ATlsCallSucceeds) {
  std::string cn;
  grpc::Status status = Info(TlsChannel(server_->port(), "ca1"), &cn);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(cn, "attnserve-server");
}

TEST_F(TlsTest, APlaintextClientCannotCall) {
  grpc::Status status = Info(NewChannel(server_->port()));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
}

TEST_F(TlsTest, AClientTrustingAnotherCaRefusesTheServer) {
  grpc::Status status = Info(TlsChannel(server_->port(), "ca2"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
}

TEST_F(TlsTest, TheServerNameIsChecked) {
  EXPECT_TRUE(Info(TlsChannel(server_->port(), "ca1", "", "localhost")).ok());
  EXPECT_EQ(Info(TlsChannel(server_->port(), "ca1", "", "other.example"))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, AttnctlConnectsWithTlsFlags) {
  auto run = [&](std::vector<std::string> args) {
    absl::StatusOr<client::Flags> flags = client::ParseFlags(args);
    EXPECT_TRUE(flags.ok()) << flags.status();
    if (!flags.ok()) return flags.status();
    if (absl::Status s = client::LoadConnectionFiles(&*flags); !s.ok()) {
      return s;
    }
    auto stub = v1::Encoder::NewStub(client::Connect(flags->channel));
    std::string out;
    return client::RunCommand(*flags, *stub, &out);
  };
  const std::string target = absl::StrCat("127.0.0.1:", server_->port());
  const std::string ca = Certificates::Get().Pem("ca1");
  EXPECT_TRUE(run({"info", "--target", target, "--tls", "--ca", ca}).ok());
  // --ca implies --tls; --server-name is checked against the certificate.
  EXPECT_TRUE(run({"info", "--target", target, "--ca", ca, "--server-name",
                   "localhost"})
                  .ok());
  EXPECT_EQ(run({"info", "--target", target, "--ca", ca, "--server-name",
                 "other.example", "--timeout", "5"})
                .code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(run({"info", "--target", target, "--timeout", "5"}).code(),
            absl::StatusCode::kUnavailable);  // plaintext
  absl::Status missing = run({"info", "--target", target, "--ca",
                              Certificates::Get().dir() + "/absent.pem"});
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(missing.message()), HasSubstr("--ca: "));
  absl::StatusOr<client::Flags> half =
      client::ParseFlags({"info", "--cert", ca});
  EXPECT_FALSE(half.ok());
}

class MtlsTest : public SharedServerTest {
 protected:
  static void SetUpTestSuite() {
    if (!Certificates::Get().ok()) return;
    StartSuite(TlsServerOptions(/*mtls=*/true));
  }
  void SetUp() override {
    ASSERT_TRUE(Certificates::Get().ok()) << Certificates::Get().error();
    SharedServerTest::SetUp();
  }
};

TEST_F(MtlsTest, AClientWithACertificateFromTheCaIsServed) {
  grpc::Status status = Info(TlsChannel(server_->port(), "ca1", "client"));
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(MtlsTest, AClientWithoutACertificateIsRefused) {
  grpc::Status status = Info(TlsChannel(server_->port(), "ca1"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
}

TEST_F(MtlsTest, AClientCertificateFromAnotherCaIsRefused) {
  grpc::Status status = Info(TlsChannel(server_->port(), "ca1", "stranger"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
}

// The server's files are replaced by a certificate from the second CA: within
// the refresh interval (1 s here), new connections get it.
TEST(TlsRotationTest, ARotatedCertificateIsServedWithinTheRefreshInterval) {
  const Certificates& certs = Certificates::Get();
  ASSERT_TRUE(certs.ok()) << certs.error();
  TempDir dir("attnserve_rotation_");
  const std::string cert = dir.File("server.pem");
  const std::string key = dir.File("server.key");
  std::filesystem::copy_file(certs.Pem("server"), cert);
  std::filesystem::copy_file(certs.Key("server"), key);
  ServerOptions options = TlsServerOptions(/*mtls=*/false);
  options.tls.cert_file = cert;
  options.tls.key_file = key;
  std::unique_ptr<Server> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  std::string cn;
  ASSERT_TRUE(Info(TlsChannel(server->port(), "ca1"), &cn).ok());
  EXPECT_EQ(cn, "attnserve-server");
  EXPECT_FALSE(Info(TlsChannel(server->port(), "ca2")).ok());

  // Rotate as a deployment does: new files renamed over the old ones.
  std::filesystem::copy_file(certs.Key("rotated"), key + ".new");
  std::filesystem::copy_file(certs.Pem("rotated"), cert + ".new");
  const absl::Time rotated = absl::Now();
  std::filesystem::rename(key + ".new", key);
  std::filesystem::rename(cert + ".new", cert);
  grpc::Status status;
  absl::Duration took;
  do {
    status = Info(TlsChannel(server->port(), "ca2"), &cn);
    took = absl::Now() - rotated;
    if (!status.ok()) absl::SleepFor(absl::Milliseconds(100));
  } while (!status.ok() && took < absl::Seconds(30));
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(cn, "attnserve-server-rotated");
  // 1 s interval; the rest is slack for a loaded machine.
  EXPECT_LT(took, absl::Seconds(5)) << "took " << took;
  // The old certificate is no longer served.
  EXPECT_FALSE(Info(TlsChannel(server->port(), "ca1")).ok());
}

TEST(TlsOptionsTest, FilesThatCannotWorkStopTheStart) {
  const Certificates& certs = Certificates::Get();
  ASSERT_TRUE(certs.ok()) << certs.error();
  auto error = [](TlsOptions o) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> c =
        ServerCredentialsFor(o);
    EXPECT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(c.status().message());
  };
  TlsOptions o;
  o.cert_file = certs.Pem("server");
  o.key_file = certs.Key("rotated");
  EXPECT_THAT(error(o), HasSubstr("is not the key of the certificate"));
  EXPECT_THAT(error(o), HasSubstr("--tls_key="));
  o.key_file = certs.dir() + "/absent.key";
  EXPECT_THAT(error(o), HasSubstr("--tls_key: "));
  o.key_file = certs.Pem("ca1");  // a certificate, not a key
  EXPECT_THAT(error(o), HasSubstr("not an unencrypted PEM private key"));
  o.key_file = "";
  EXPECT_THAT(error(o), HasSubstr("both --tls_cert and --tls_key"));
  o = TlsOptions();
  o.client_ca_file = certs.Pem("ca1");
  EXPECT_THAT(error(o), HasSubstr("--tls_client_ca needs TLS"));
  o.cert_file = certs.Pem("server");
  o.key_file = certs.Key("server");
  o.client_ca_file = certs.Key("ca1");  // a key, not a certificate
  EXPECT_THAT(error(o), HasSubstr("--tls_client_ca="));
  o.client_ca_file = "";
  o.cert_file = certs.Key("server");
  EXPECT_THAT(error(o), HasSubstr("--tls_cert="));
  EXPECT_TRUE(ServerCredentialsFor(TlsOptions()).ok());  // plaintext
}

// A real attnserve with mTLS, --tls_* flags.
class TlsProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(certs_.ok()) << certs_.error();
    server_ = AttnserveProcess::Start(
        {"--tls_cert=" + certs_.Pem("server"),
         "--tls_key=" + certs_.Key("server"),
         "--tls_client_ca=" + certs_.Pem("ca1"), "--log_requests=false"},
        dir_.File("stderr.log"));
    ASSERT_NE(server_, nullptr);
    target_ = absl::StrCat("127.0.0.1:", server_->port());
    client_tls_ =
        absl::StrCat(" --ca ", certs_.Pem("ca1"), " --cert ",
                     certs_.Pem("client"), " --key ", certs_.Key("client"));
  }
  void TearDown() override {
    if (server_ != nullptr) {
      EXPECT_EQ(server_->Stop(), 0);
    }
  }

  const Certificates& certs_ = Certificates::Get();
  TempDir dir_{"attnserve_tls_process_"};
  std::unique_ptr<AttnserveProcess> server_;
  std::string target_;
  std::string client_tls_;  // --ca --cert --key of a client the CA signed
};

TEST_F(TlsProcessTest, AttnctlConnectsWithMtls) {
  CommandResult attnctl =
      RunShell(absl::StrCat(ATTNCTL_BIN, " --target ", target_, " --tls",
                            client_tls_, " encode 'the cat sat'"));
  EXPECT_EQ(attnctl.status, 0) << attnctl.output;
  EXPECT_THAT(attnctl.output, HasSubstr("5 tokens: [CLS] the cat sat [SEP]"));
  CommandResult no_cert =
      RunShell(absl::StrCat(ATTNCTL_BIN, " --target ", target_,
                            " --timeout 5 --ca ", certs_.Pem("ca1"), " info"));
  EXPECT_EQ(no_cert.status, 1);
  EXPECT_THAT(no_cert.output, HasSubstr("attnctl: UNAVAILABLE: "));
}

TEST_F(TlsProcessTest, PythonExampleConnectsWithMtls) {
  if (const std::string why = PythonExampleMissing(); !why.empty()) {
    GTEST_SKIP() << why;
  }
  CommandResult python = RunShell(absl::StrCat(
      "/usr/bin/python3 " ATTNSERVE_SOURCE_DIR "/client/python_example.py",
      " --target ", target_, " --tls", client_tls_,
      " --server_name localhost --text 'the cat sat'"));
  EXPECT_EQ(python.status, 0) << python.output;
  EXPECT_THAT(python.output, HasSubstr("model tiny_bert"));
}

TEST(TlsStartTest, AKeyThatIsNotTheCertificatesFailsTheStart) {
  const Certificates& certs = Certificates::Get();
  ASSERT_TRUE(certs.ok()) << certs.error();
  TempDir dir("attnserve_tls_process_");
  ChildProcess child(
      {ATTNSERVE_BIN, "--model=" ATTNSERVE_TEST_DATA "/tiny_bert",
       "--address=127.0.0.1:0", "--tls_cert=" + certs.Pem("server"),
       "--tls_key=" + certs.Key("client")},
      dir.File("stderr.log"));
  EXPECT_EQ(child.Wait(absl::Seconds(60)), 1);
  EXPECT_THAT(child.Output(), HasSubstr("attnserve: --tls_key="));
  EXPECT_THAT(child.Output(), HasSubstr("is not the key of the certificate"));
}

}  // namespace
}  // namespace attnserve::testing
