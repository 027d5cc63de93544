// Vm::inspect: what Envoy checks before it runs a module (proxy-wasm-cpp-host's WasmBase::load and
// getFunctions): load-time limits, imports the host provides, the ABI marker, the allocator and the
// signatures of the callbacks it knows.
#include <string>

#include "host/src/engine/wasm_engine.h"
#include "host/src/import_table.h"
#include "tcpsteer/host/vm.h"

namespace tcpsteer::host {
namespace {

constexpr const char* kAbiMarkers[] = {"proxy_abi_version_0_1_0", "proxy_abi_version_0_2_0",
                                       "proxy_abi_version_0_2_1"};
constexpr size_t kAbiMarkerPrefix = sizeof("proxy_abi_version_") - 1;

std::string abiVersionOf(const WasmEngine& engine) {
  std::string version;
  for (const char* marker : kAbiMarkers) {
    for (const ExportDesc& e : engine.exports()) {
      if (e.name == marker && e.kind == ExternKind::kFunc)
        version = std::string(marker).substr(kAbiMarkerPrefix);
    }
  }
  return version;
}

void checkImports(const WasmEngine& engine, WasiTier tier, LoadReport& report) {
  for (const ImportDesc& import : engine.imports()) {
    std::string text = import.module + "." + import.name;
    if (import.kind != ExternKind::kFunc) {
      text += import.kind == ExternKind::kMemory ? " (memory)" : " (non-function)";
      report.imports.push_back(text);
      if (import.kind != ExternKind::kMemory) {
        report.unknown_imports.push_back(text);
        report.problems.push_back("missing import " + text +
                                  ": the host provides no globals or tables");
      }
      continue;
    }
    text += " " + import.sig.text();
    report.imports.push_back(text);
    const ImportRow* row = findImport(import.module, import.name);
    if (row == nullptr || !importAvailable(*row, report.abi_version, tier)) {
      report.unknown_imports.push_back(text);
      report.problems.push_back("Failed to load Wasm module due to a missing import: " +
                                import.module + "." + import.name);
    } else if (row->signature != import.sig.text()) {
      report.problems.push_back("Failed to load Wasm module due to an import type mismatch: " +
                                import.module + "." + import.name + ", want: " + import.sig.text() +
                                ", but host exports: " + std::string(row->signature));
    }
  }
}

void checkExports(const WasmEngine& engine, LoadReport& report) {
  bool has_memory = false;
  bool has_allocator = false;
  for (const ExportDesc& e : engine.exports()) {
    if (e.kind == ExternKind::kMemory) {
      has_memory = true;
      report.exports.push_back(e.name + " (memory)");
      continue;
    }
    if (e.kind != ExternKind::kFunc) continue;
    report.exports.push_back(e.name + " " + e.sig.text());
    for (const ExportSpec& spec : kExportSpecs) {
      if (e.name != spec.name) continue;
      std::string want = report.abi_version == "0_1_0" && spec.signature_0_1_0 != nullptr
                             ? spec.signature_0_1_0
                             : spec.signature;
      if (e.sig.text() != want) {
        report.problems.push_back("Bad function signature for: " + e.name + " (" + e.sig.text() +
                                  ", expected " + want + ")");
      } else if (e.name == "malloc" || e.name == "proxy_on_memory_allocate") {
        has_allocator = true;
      }
    }
  }
  for (const ImportDesc& import : engine.imports())
    has_memory |= import.kind == ExternKind::kMemory;
  if (!has_memory) report.problems.push_back("the module has no linear memory (export \"memory\")");
  if (!has_allocator)
    report.problems.push_back("Wasm module is missing malloc function (export malloc)");
}

}  // namespace

LoadReport Vm::inspect(std::span<const uint8_t> module, WasiTier tier) {
  LoadReport report;
  report.module_bytes = module.size();
  auto engine = WasmEngine::parse(module);
  if (!engine) {
    report.problems.push_back(engine.error());
    return report;
  }
  report.abi_version = abiVersionOf(**engine);
  if (report.abi_version.empty()) {
    report.problems.push_back(
        "no ABI version marker: export one function named proxy_abi_version_0_2_1 (or 0_2_0, "
        "0_1_0)");
  }
  checkImports(**engine, tier, report);
  checkExports(**engine, report);
  report.ok = report.problems.empty();
  return report;
}

}  // namespace tcpsteer::host
