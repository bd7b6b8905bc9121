// The interrupt flag long commands (gc, fsck, mirror) stop on.
#include "commands.hpp"

#include <csignal>

namespace registryd::cli {
namespace {

std::atomic<bool> interrupted{false};
void on_interrupt(int) { interrupted.store(true); }

}  // namespace

const std::atomic<bool>& watch_interrupts() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;  // the second signal has its default effect: the process ends
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  return interrupted;
}

}  // namespace registryd::cli
