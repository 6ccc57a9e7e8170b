#include "runner/signals.h"

#include <signal.h>

#include <csignal>

namespace pimqat::runner {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};
std::atomic<bool> g_installed{false};
static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free,
              "the signal handler needs lock-free atomics");

extern "C" void on_stop_signal(int sig) {
  if (sig == SIGINT && g_stop.load()) {
    // Second Ctrl-C: leave now (journal records are complete or torn-and-detected at every instant).
    ::signal(SIGINT, SIG_DFL);
    ::raise(SIGINT);
    return;
  }
  g_signal.store(sig);
  g_stop.store(true);
}

}  // namespace

std::atomic<bool>& install_stop_handlers() {
  if (!g_installed.exchange(true)) {
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    for (int sig : {SIGINT, SIGTERM, SIGUSR1}) sigaction(sig, &action, nullptr);
  }
  return g_stop;
}

std::atomic<bool>& stop_flag() { return g_stop; }
int stop_signal() { return g_signal.load(); }
void request_stop() { g_stop.store(true); }
void clear_stop() {
  g_stop.store(false);
  g_signal.store(0);
}

void restore_default_handlers() {
  if (!g_installed.exchange(false)) return;
  for (int sig : {SIGINT, SIGTERM, SIGUSR1}) ::signal(sig, SIG_DFL);
}

}  // namespace pimqat::runner
