#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include "io/hdf5.hpp"

int main(int argc, char** argv) {
  crema::io::skip_hdf5_exit_cleanup();  // as crema's main
  // Nets and solvers log their setup; tests only want to see failures.
  spdlog::set_level(spdlog::level::warn);
  return doctest::Context(argc, argv).run();
}
