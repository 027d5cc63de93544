#include "host/src/engine/precompiled_engine.h"

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

namespace {

// The jump target of the innermost precompiled call on this thread. Each worker thread runs its own
// VMs, and a host function may call back into the guest (malloc), so targets nest per thread. The
// wasm2c runtime keeps one global target; it is compiled with WASM_RT_TRAP_HANDLER pointing here.
thread_local std::jmp_buf* t_trap_target = nullptr;
thread_local int t_trap_code = 0;

}  // namespace

extern "C" void tcpsteer_precompiled_trap_code(int code) {
  if (t_trap_target == nullptr) {
    std::fprintf(stderr, "tcpsteer: wasm trap %d outside a precompiled call\n", code);
    std::abort();
  }
  t_trap_code = code;
  std::longjmp(*t_trap_target,
               1);  // NOLINT(cert-err52-cpp): only C frames of wasm2c code lie between
}

extern "C" void tcpsteer_precompiled_trap(void) {
  tcpsteer_precompiled_trap_code(WASM_RT_TRAP_UNREACHABLE);
}

namespace tcpsteer::host {

#ifdef TCPSTEER_HAVE_PRECOMPILED

namespace {

using precompiled::binding;

const char* trapText(int code) {
  switch (code) {
    case WASM_RT_TRAP_OOB:
      return "out of bounds memory access";
    case WASM_RT_TRAP_INT_OVERFLOW:
      return "integer overflow";
    case WASM_RT_TRAP_DIV_BY_ZERO:
      return "integer divide by zero";
    case WASM_RT_TRAP_INVALID_CONVERSION:
      return "invalid conversion to integer";
    case WASM_RT_TRAP_UNREACHABLE:
      return "unreachable executed";
    case WASM_RT_TRAP_CALL_INDIRECT:
      return "indirect call signature mismatch";
    case WASM_RT_TRAP_EXHAUSTION:
      return "call stack exhausted";
    default:
      return "trap";
  }
}

// Runs one export with a jump target in place; only trivially destructible objects live in this
// frame, so a longjmp out of the guest skips nothing that needs cleaning up. Returns the trap code.
int guardedCall(const precompiled::ExportEntry* entry, void* instance, const uint64_t* args,
                uint64_t* results) {
  std::jmp_buf target;
  std::jmp_buf* const outer = t_trap_target;
  t_trap_target = &target;
  if (setjmp(target) != 0) {  // NOLINT(cert-err52-cpp)
    t_trap_target = outer;
    return t_trap_code != 0 ? t_trap_code : WASM_RT_TRAP_UNREACHABLE;
  }
  entry->call(instance, args, results);
  t_trap_target = outer;
  return WASM_RT_TRAP_NONE;
}

int guardedInstantiate(void* instance, precompiled::ImportSink* sink) {
  std::jmp_buf target;
  std::jmp_buf* const outer = t_trap_target;
  t_trap_target = &target;
  if (setjmp(target) != 0) {  // NOLINT(cert-err52-cpp)
    t_trap_target = outer;
    return t_trap_code;
  }
  binding().instantiate(instance, sink);
  t_trap_target = outer;
  return WASM_RT_TRAP_NONE;
}

class PrecompiledEngine final : public WasmEngine, public precompiled::ImportSink {
 public:
  PrecompiledEngine(std::vector<ImportDesc> imports, std::vector<ExportDesc> exports)
      : imports_(std::move(imports)), exports_(std::move(exports)) {}

  ~PrecompiledEngine() override {
    if (instantiated_) binding().free(instance_);
    ::operator delete(instance_, std::align_val_t(binding().instance_align));
  }
  PrecompiledEngine(const PrecompiledEngine&) = delete;
  PrecompiledEngine& operator=(const PrecompiledEngine&) = delete;

  const std::vector<ImportDesc>& imports() const override { return imports_; }
  const std::vector<ExportDesc>& exports() const override { return exports_; }

  Result<void> instantiate(const std::vector<HostFunction>& functions) override {
    static std::once_flag once;
    std::call_once(once, [] {
      wasm_rt_init();
      binding().init_module();  // registers function types in the runtime's global table
    });
    // The generated thunks are numbered in wasm2c's import order; functions follow imports().
    for (const precompiled::ImportName& name : binding().imports) {
      const HostFunction* found = nullptr;
      for (size_t i = 0; i < imports_.size(); ++i) {
        if (imports_[i].module == name.module && imports_[i].name == name.name &&
            i < functions.size() && functions[i]) {
          found = &functions[i];
        }
      }
      if (found == nullptr)
        return Error{std::string("no host function for import ") + name.module + "." + name.name};
      const ImportDesc& desc = imports_[static_cast<size_t>(found - functions.data())];
      slots_.push_back({*found, desc.sig.params.size(), desc.sig.results.size()});
    }
    instance_ = ::operator new(binding().instance_size, std::align_val_t(binding().instance_align));
    std::memset(instance_, 0, binding().instance_size);
    const int trap = guardedInstantiate(instance_, this);
    if (trap != WASM_RT_TRAP_NONE)
      return Error{std::string("instantiation trapped: ") + trapText(trap)};
    instantiated_ = true;
    return {};
  }

  CallOutcome call(const std::string& export_name, std::span<const uint64_t> args) override {
    CallOutcome outcome;
    const precompiled::ExportEntry* entry = find(export_name);
    if (entry == nullptr || !instantiated_) {
      outcome.status = CallOutcome::Status::kMissing;
      outcome.message = "no function export " + export_name;
      return outcome;
    }
    if (args.size() != entry->param_count) {
      outcome.status = CallOutcome::Status::kTrap;
      outcome.message = export_name + ": wrong number of arguments";
      return outcome;
    }
    uint64_t results[1] = {0};
    const bool outermost = depth_ == 0;
    if (outermost) host_trap_.clear();
    ++depth_;
    const int trap = guardedCall(entry, instance_, args.data(), results);
    --depth_;
    if (trap != WASM_RT_TRAP_NONE) {
      outcome.status = CallOutcome::Status::kTrap;
      outcome.message = !host_trap_.empty() ? host_trap_ : trapText(trap);
      return outcome;
    }
    outcome.results.assign(results, results + entry->result_count);
    return outcome;
  }

  bool hasFunction(const std::string& export_name) const override {
    return find(export_name) != nullptr;
  }

  // Native code: no instruction counting (budgets and profiles need the interpreter).
  void setInstructionBudget(uint64_t /*instructions*/) override {}
  void chargeHostWork(uint64_t /*instructions*/) override {}
  void enableProfile() override {}
  std::vector<std::pair<uint32_t, uint64_t>> profile() const override { return {}; }
  uint64_t instructionsExecuted() const override { return 0; }

  uint8_t* memoryData() override {
    return instantiated_ ? binding().memory(instance_)->data : nullptr;
  }
  uint64_t memorySize() const override {
    return instantiated_ ? binding().memory(instance_)->size : 0;
  }

  bool callImport(uint32_t slot, const uint64_t* args, uint64_t* results) override {
    const Slot& target = slots_[slot];
    std::string trap;
    if (!target.function(std::span<const uint64_t>(args, target.param_count),
                         std::span<uint64_t>(results, target.result_count), &trap)) {
      host_trap_ = trap.empty() ? "host function trapped" : trap;
      return false;
    }
    return true;
  }

 private:
  // A generated import thunk's host function, with the arity looked up once at instantiation.
  struct Slot {
    HostFunction function;
    size_t param_count;
    size_t result_count;
  };

  const precompiled::ExportEntry* find(const std::string& name) const {
    auto it = exports_by_name_.find(name);
    return it != exports_by_name_.end() ? it->second : nullptr;
  }

  static std::map<std::string, const precompiled::ExportEntry*, std::less<>> exportIndex() {
    std::map<std::string, const precompiled::ExportEntry*, std::less<>> index;
    for (const precompiled::ExportEntry& entry : binding().exports)
      index.emplace(entry.name, &entry);
    return index;
  }

  std::vector<ImportDesc> imports_;
  std::vector<ExportDesc> exports_;
  std::map<std::string, const precompiled::ExportEntry*, std::less<>> exports_by_name_ =
      exportIndex();
  std::vector<Slot> slots_;
  void* instance_ = nullptr;
  bool instantiated_ = false;
  int depth_ = 0;
  std::string host_trap_;
};

}  // namespace

bool precompiledMatches(std::span<const uint8_t> module) {
  const auto& bytes = precompiled::binding().module_bytes;
  return module.size() == bytes.size() &&
         std::memcmp(module.data(), bytes.data(), bytes.size()) == 0;
}

Result<std::unique_ptr<WasmEngine>> makePrecompiledEngine(std::span<const uint8_t> module) {
  if (!precompiledMatches(module)) {
    return Error{
        "this module is not the one tcpsteer was built with, so there is no precompiled engine for "
        "it; use the interpreter"};
  }
  // The interpreter's parser describes imports and exports (and validates the bytes once more).
  auto described = WasmEngine::parse(module);
  if (!described) return Error{described.error()};
  return std::unique_ptr<WasmEngine>(
      std::make_unique<PrecompiledEngine>((*described)->imports(), (*described)->exports()));
}

#else  // built without a module to precompile

bool precompiledMatches(std::span<const uint8_t> /*module*/) {
  return false;
}

Result<std::unique_ptr<WasmEngine>> makePrecompiledEngine(std::span<const uint8_t> /*module*/) {
  return Error{"this build has no precompiled module (the .wasm did not exist when CMake ran)"};
}

#endif

}  // namespace tcpsteer::host
