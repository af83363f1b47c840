#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

int main(int argc, char** argv) {
  // Nets and solvers log their setup; tests only want to see failures.
  spdlog::set_level(spdlog::level::warn);
  return doctest::Context(argc, argv).run();
}
