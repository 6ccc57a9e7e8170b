// pimqat: one program, subcommands (DESIGN.md section 4). Each subcommand lives in its own file.
#include <cstdio>

int main() {
  std::puts("pimqat: under construction");
  return 0;
}
