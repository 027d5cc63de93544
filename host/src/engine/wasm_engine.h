// The wasm engine seam: load a module, bind imports to host callbacks, call exports under an
// instruction budget, and read/write linear memory. Only wasm_engine.cc knows it is wabt's
// interpreter; the Envoy semantics in host/src see this interface alone.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tcpsteer/host/result.h"

namespace tcpsteer::host {

enum class ValType : uint8_t { kI32, kI64, kOther };
enum class ExternKind : uint8_t { kFunc, kTable, kMemory, kGlobal, kTag };

struct FuncSig {
  std::vector<ValType> params;
  std::vector<ValType> results;

  bool operator==(const FuncSig&) const = default;
  std::string text() const;  // "(i32, i32) -> i32", the notation of envoy-host-imports.txt
};

struct ImportDesc {
  std::string module;
  std::string name;
  ExternKind kind = ExternKind::kFunc;
  FuncSig sig;  // kFunc only
};

struct ExportDesc {
  std::string name;
  ExternKind kind = ExternKind::kFunc;
  FuncSig sig;  // kFunc only
};

// A host function: reads args (i32 values zero-extended, i64 as is), writes results. Returning
// false traps the guest with *trap as the message.
using HostFunction = std::function<bool(std::span<const uint64_t> args, std::span<uint64_t> results,
                                        std::string* trap)>;

struct CallOutcome {
  enum class Status : uint8_t { kOk, kTrap, kBudgetExhausted, kMissing };
  Status status = Status::kOk;
  std::vector<uint64_t> results;
  std::string message;  // trap message
  uint64_t instructions = 0;

  bool ok() const { return status == Status::kOk; }
};

class WasmEngine {
 public:
  virtual ~WasmEngine() = default;

  // Checks the load-time limits, then parses and validates a binary module.
  static Result<std::unique_ptr<WasmEngine>> parse(std::span<const uint8_t> bytes);

  virtual const std::vector<ImportDesc>& imports() const = 0;
  virtual const std::vector<ExportDesc>& exports() const = 0;

  // functions[i] serves imports()[i] (ignored for non-function imports; an imported memory is
  // created by the engine). Runs the start function, if any, under the instruction budget. Fails
  // if instantiation does (e.g. a data segment out of bounds, a trapping start function).
  virtual Result<void> instantiate(const std::vector<HostFunction>& functions) = 0;

  // Calls a function export. Nested calls (from inside a host function) run on the same stack and
  // count against the same budget, which is set by the outermost call.
  virtual CallOutcome call(const std::string& export_name, std::span<const uint64_t> args) = 0;
  virtual bool hasFunction(const std::string& export_name) const = 0;

  virtual void setInstructionBudget(uint64_t instructions) = 0;
  // Work the host does for the guest inside a call (copying or scanning its memory), counted
  // against the current call's budget as this many instructions: a loop of cheap host calls that
  // each move megabytes must end as surely as a loop of instructions. Not part of
  // instructionsExecuted() or CallOutcome::instructions, which count the guest's own.
  virtual void chargeHostWork(uint64_t instructions) = 0;
  // Per-function instruction counts (function index in the module, imports first), for profiling.
  virtual void enableProfile() = 0;
  virtual std::vector<std::pair<uint32_t, uint64_t>> profile() const = 0;
  virtual uint64_t instructionsExecuted() const = 0;  // monotonic, all calls

  // Linear memory (the first exported or imported memory); may move after any guest call.
  virtual uint8_t* memoryData() = 0;
  virtual uint64_t memorySize() const = 0;
};

}  // namespace tcpsteer::host
