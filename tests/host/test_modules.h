// What the host tests share: the conformance modules built by wat2wasm (TCPSTEER_TEST_MODULES), a
// VM started on one of them, and line searches.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "tcpsteer/host/vm.h"

namespace tcpsteer::host::test_modules {

inline std::string fileBytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  EXPECT_TRUE(file) << path;
  std::stringstream bytes;
  bytes << file.rdbuf();
  return bytes.str();
}

inline std::string moduleBytes(const std::string& name) {
  return fileBytes(std::string(TCPSTEER_TEST_MODULES) + "/" + name + ".wasm");
}

inline std::span<const uint8_t> span(const std::string& bytes) {
  return {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()};
}

inline std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += line + "\n";
  return out;
}

inline bool contains(const std::vector<std::string>& lines, const std::string& fragment) {
  for (const auto& line : lines) {
    if (line.find(fragment) != std::string::npos) return true;
  }
  return false;
}

// Loaded, started and configured (root id "test", empty configuration); nullptr after a failed
// expectation.
inline std::unique_ptr<Vm> startedVm(const std::string& name, const VmOptions& options = {}) {
  std::string bytes = moduleBytes(name);
  LoadReport report;
  auto vm = Vm::load(span(bytes), options, &report);
  EXPECT_TRUE(vm) << name << ": " << joined(report.problems);
  if (!vm) return nullptr;
  EXPECT_TRUE(vm->start());
  EXPECT_EQ(vm->startPlugin({"test", "", "test", "", {}}), Vm::PluginStatus::kOk);
  return vm;
}

}  // namespace tcpsteer::host::test_modules
