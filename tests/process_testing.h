// Helpers for tests that run real programs: a child process with its stderr
// in a file (attnserve itself, prometheus), a shell command's output and
// exit status (curl, openssl, promtool), a free loopback port, and a
// temporary directory. Header-only; every wait is bounded.
#ifndef ATTNSERVE_TESTS_PROCESS_TESTING_H_
#define ATTNSERVE_TESTS_PROCESS_TESTING_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace attnserve::testing {

// What a shell command printed (stdout and stderr) and its exit status.
struct CommandResult {
  int status = -1;  // exit status, or -1 when it did not exit normally
  std::string output;
};

// Runs `command` with /bin/sh, stderr merged into stdout.
inline CommandResult RunShell(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    result.output = "popen failed: " + command;
    return result;
  }
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    result.output.append(buffer, n);
  }
  const int wait_status = pclose(pipe);
  if (WIFEXITED(wait_status)) result.status = WEXITSTATUS(wait_status);
  return result;
}

// `name` on $PATH (or an absolute path that exists), else empty.
inline std::string FindTool(const std::string& name) {
  CommandResult r = RunShell("command -v " + name);
  if (r.status != 0) return "";
  while (!r.output.empty() && std::isspace(r.output.back())) {
    r.output.pop_back();
  }
  return r.output;
}

// Why client/python_example.py cannot run here, or "" when it can: it needs
// /usr/bin/python3 with grpc and numpy (python3-grpcio, python3-numpy:
// scripts/install_deps.sh --test; the image build's --unit-test leaves them
// out).
inline std::string PythonExampleMissing() {
  const CommandResult r =
      RunShell("/usr/bin/python3 -c 'import grpc, numpy' 2>&1");
  if (r.status == 0) return "";
  return "python3 with grpc and numpy is not installed (python3-grpcio, "
         "python3-numpy: scripts/install_deps.sh --test): " +
         r.output;
}

// 'text' for /bin/sh.
inline std::string ShellQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(file)),
                     std::istreambuf_iterator<char>());
}

inline void WriteWholeFile(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << text;
}

// A fresh directory under $TMPDIR (or /tmp), removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix) {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        absl::StrCat(base != nullptr ? base : "/tmp", "/", prefix, "XXXXXX");
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (mkdtemp(buffer.data()) != nullptr) path_ = buffer.data();
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const {
    return absl::StrCat(path_, "/", name);
  }

 private:
  std::string path_;
};

// A port that was free on 127.0.0.1 a moment ago (for programs that need a
// port given to them: prometheus).
inline int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  int port = 0;
  socklen_t size = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

// A child process running `argv`, its stdout and stderr appended to a file.
// The destructor kills it (SIGKILL) if it still runs.
class ChildProcess {
 public:
  // `env`: NAME=VALUE entries put before the inherited environment.
  ChildProcess(const std::vector<std::string>& argv,
               const std::string& output_path,
               const std::vector<std::string>& env = {})
      : output_path_(output_path) {
    // Everything exec needs is built before fork: the child of a threaded
    // process may only make async-signal-safe calls.
    std::vector<char*> args;
    for (const std::string& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    std::vector<std::string> environment(env.begin(), env.end());
    for (char** e = environ; *e != nullptr; ++e) environment.push_back(*e);
    std::vector<char*> envp;
    for (std::string& e : environment) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      const int fd =
          open(output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
      }
      // Signals the test blocked would stay blocked across exec.
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      execve(args[0], args.data(), envp.data());
      _exit(127);
    }
  }
  ~ChildProcess() {
    if (running()) {
      kill(pid_, SIGKILL);
      Wait(absl::Seconds(10));
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool started() const { return pid_ > 0; }
  bool running() const { return pid_ > 0 && !exit_status_.has_value(); }
  std::string Output() const { return ReadWholeFile(output_path_); }

  void Signal(int signal_number) {
    if (running()) kill(pid_, signal_number);
  }

  // Waits (bounded) for the output to match `pattern` (std::regex,
  // ECMAScript): the match and its groups, or nullopt on timeout or exit.
  std::optional<std::vector<std::string>> WaitForOutput(
      const std::string& pattern, absl::Duration timeout,
      std::string* output = nullptr) {
    const std::regex re(pattern);
    const absl::Time give_up = absl::Now() + timeout;
    for (;;) {
      const std::string text = Output();
      if (output != nullptr) *output = text;
      std::smatch match;
      if (std::regex_search(text, match, re)) {
        return std::vector<std::string>(match.begin(), match.end());
      }
      Poll();
      if (!running() || absl::Now() > give_up) return std::nullopt;
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  // Waits (bounded) for the child to exit: its exit status, or -1 (killed by
  // a signal, or still running at the timeout).
  int Wait(absl::Duration timeout) {
    const absl::Time give_up = absl::Now() + timeout;
    while (running()) {
      Poll();
      if (!running()) break;
      if (absl::Now() > give_up) return -1;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return exit_status_.value_or(-1);
  }

 private:
  void Poll() {
    if (!running()) return;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
  }

  const std::string output_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

// A real attnserve (ATTNSERVE_BIN) on tests/data/tiny_bert, 127.0.0.1, port 0,
// --drain_delay=0 (these tests have no load balancer to wait for), with
// `flags` added; Start() waits for its "serving" line. (Like
// tests/server_process.h's ServerProcess, but its output goes to a file the
// test can read after the process is gone, and it knows the metrics port.)
class AttnserveProcess {
 public:
  // Null (with a test failure) when it does not come up within 60 s.
  static std::unique_ptr<AttnserveProcess> Start(
      const std::vector<std::string>& flags, const std::string& log_path) {
    std::vector<std::string> argv = {
        ATTNSERVE_BIN, "--model=" ATTNSERVE_TEST_DATA "/tiny_bert",
        "--address=127.0.0.1:0"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto process = std::unique_ptr<AttnserveProcess>(new AttnserveProcess());
    process->child_ = std::make_unique<ChildProcess>(argv, log_path);
    std::string output;
    std::optional<std::vector<std::string>> serving =
        process->child_->WaitForOutput(
            "attnserve: serving .* on [^ ]*:([0-9]+)\n", absl::Seconds(60),
            &output);
    if (!serving) {
      ADD_FAILURE() << "attnserve " << absl::StrJoin(flags, " ")
                    << " did not start; its output:\n"
                    << output;
      return nullptr;
    }
    process->port_ = std::stoi((*serving)[1]);
    std::optional<std::vector<std::string>> metrics =
        process->child_->WaitForOutput(
            "metrics on http://[^ ]*:([0-9]+)/metrics", absl::ZeroDuration());
    if (metrics) process->metrics_port_ = std::stoi((*metrics)[1]);
    return process;
  }

  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  ChildProcess& child() { return *child_; }
  std::string Output() const { return child_->Output(); }

  // SIGTERM, then the exit status (bounded: -1 if it does not exit in 60 s).
  int Stop() {
    child_->Signal(SIGTERM);
    return child_->Wait(absl::Seconds(60));
  }

 private:
  AttnserveProcess() = default;
  std::unique_ptr<ChildProcess> child_;
  int port_ = 0;
  int metrics_port_ = 0;
};

}  // namespace attnserve::testing

#endif  // ATTNSERVE_TESTS_PROCESS_TESTING_H_
