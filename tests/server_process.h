// A real `attnserve` process for tests: started with its flags on
// 127.0.0.1:0, its port read from its "serving ... on HOST:PORT" line, its
// stderr kept for checks, and stopped with a signal.
#ifndef ATTNSERVE_TESTS_SERVER_PROCESS_H_
#define ATTNSERVE_TESTS_SERVER_PROCESS_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace attnserve::testing {

class ServerProcess {
 public:
  ServerProcess() = default;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) ::close(fd_);
  }

  // Starts `binary --address=127.0.0.1:0 flags...` and waits up to
  // `timeout_s` for its serving line. False (with a test failure) if it
  // exits or does not say it serves in time.
  bool Start(const std::string& binary, std::vector<std::string> flags,
             int timeout_s = 60) {
    int pipe_fds[2];
    if (::pipe(pipe_fds) != 0) return false;
    flags.insert(flags.begin(), "--address=127.0.0.1:0");
    flags.insert(flags.begin(), binary);
    pid_ = ::fork();
    if (pid_ == 0) {
      // Dies with the test, even when the test crashes.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(pipe_fds[1], STDERR_FILENO);
      ::close(pipe_fds[0]);
      ::close(pipe_fds[1]);
      std::vector<char*> argv;
      for (std::string& f : flags) argv.push_back(f.data());
      argv.push_back(nullptr);
      ::execv(binary.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(pipe_fds[1]);
    fd_ = pipe_fds[0];
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < until) {
      ReadFor(100);
      const size_t at = log_.find(" on 127.0.0.1:");
      if (at != std::string::npos && log_.find('\n', at) != std::string::npos) {
        port_ = std::stoi(log_.substr(at + 14));
        return true;
      }
      if (Exited()) break;
    }
    ADD_FAILURE() << binary << " did not start serving:\n" << log_;
    return false;
  }

  int port() const { return port_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  void Signal(int sig) { ::kill(pid_, sig); }

  // Waits up to `timeout_s` for the process to exit; its exit code, or -1
  // if it is still running (or died of a signal: -100 - signal).
  int Wait(int timeout_s) {
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < until) {
      ReadFor(50);
      if (Exited()) break;
    }
    if (pid_ > 0) return -1;
    ReadFor(0);
    return exit_code_;
  }

  // Everything the process wrote to stderr so far.
  const std::string& log() {
    ReadFor(0);
    return log_;
  }

 private:
  // Appends what stderr has within `ms` milliseconds.
  void ReadFor(int ms) {
    if (fd_ < 0) return;
    pollfd p{fd_, POLLIN, 0};
    char buf[4096];
    while (::poll(&p, 1, ms) > 0) {
      const ssize_t n = ::read(fd_, buf, sizeof(buf));
      if (n <= 0) break;
      log_.append(buf, n);
      ms = 0;
    }
  }

  bool Exited() {
    if (pid_ <= 0) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status)
                                   : -100 - WTERMSIG(status);
    pid_ = -1;
    return true;
  }

  pid_t pid_ = -1;
  int fd_ = -1;
  int port_ = 0;
  int exit_code_ = -1;
  std::string log_;
};

}  // namespace attnserve::testing

#endif  // ATTNSERVE_TESTS_SERVER_PROCESS_H_
