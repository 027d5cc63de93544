// WasmEngine on Debian's wabt 1.0.32 interpreter.
#include "host/src/engine/module_limits.h"
#include "host/src/engine/wasm_engine.h"
#include "host/src/limits.h"

#include <wabt/binary-reader.h>
#include <wabt/error-formatter.h>
#include <wabt/interp/binary-reader-interp.h>
#include <wabt/interp/interp.h>

#include <algorithm>
#include <limits>
#include <map>
#include <optional>

namespace tcpsteer::host {
namespace {

namespace wi = wabt::interp;

// wabt 1.0.32 runs a guest call to completion (Func::Call) with no way to bound it, while the
// public Thread::Step needs a frame set up by private members. Explicit template instantiation may
// name private members (C++ [temp.explicit]), which gives this file a bounded, counting call
// without patching wabt. The members used: Thread::PushValues, PushCall(const DefinedFunc&),
// PopValues.
template <typename Tag, typename Tag::type kMember>
struct PrivateMember {
  friend typename Tag::type privateMember(Tag) { return kMember; }
};

struct PushValuesTag {
  using type = void (wi::Thread::*)(const wi::ValueTypes&, const wi::Values&);
  friend type privateMember(PushValuesTag);
};
struct PopValuesTag {
  using type = void (wi::Thread::*)(const wi::ValueTypes&, wi::Values*);
  friend type privateMember(PopValuesTag);
};
struct PushCallTag {
  using type = wi::RunResult (wi::Thread::*)(const wi::DefinedFunc&, wi::Trap::Ptr*);
  friend type privateMember(PushCallTag);
};
struct FramesTag {
  using type = std::vector<wi::Frame> wi::Thread::*;
  friend type privateMember(FramesTag);
};
template struct PrivateMember<FramesTag, &wi::Thread::frames_>;
template struct PrivateMember<PushValuesTag, &wi::Thread::PushValues>;
template struct PrivateMember<PopValuesTag, &wi::Thread::PopValues>;
template struct PrivateMember<PushCallTag, &wi::Thread::PushCall>;

ValType toValType(wabt::Type type) {
  if (type == wabt::Type::I32) return ValType::kI32;
  if (type == wabt::Type::I64) return ValType::kI64;
  return ValType::kOther;
}

FuncSig toSig(const wi::FuncType& type) {
  FuncSig sig;
  for (auto t : type.params) sig.params.push_back(toValType(t));
  for (auto t : type.results) sig.results.push_back(toValType(t));
  return sig;
}

ExternKind toKind(wabt::ExternalKind kind) {
  switch (kind) {
    case wabt::ExternalKind::Func:
      return ExternKind::kFunc;
    case wabt::ExternalKind::Table:
      return ExternKind::kTable;
    case wabt::ExternalKind::Memory:
      return ExternKind::kMemory;
    case wabt::ExternalKind::Global:
      return ExternKind::kGlobal;
    case wabt::ExternalKind::Tag:
      return ExternKind::kTag;
  }
  return ExternKind::kTag;
}

wi::Value toValue(wabt::Type type, uint64_t raw) {
  if (type == wabt::Type::I64) return wi::Value::Make(raw);
  return wi::Value::Make(static_cast<uint32_t>(raw));
}

uint64_t fromValue(wabt::Type type, const wi::Value& value) {
  if (type == wabt::Type::I64) return value.Get<uint64_t>();
  if (type == wabt::Type::I32) return value.Get<uint32_t>();
  return 0;
}

class WabtEngine final : public WasmEngine {
 public:
  WabtEngine() : store_(wabt::Features()), thread_(store_) {}

  Result<void> load(std::span<const uint8_t> bytes) {
    // The declared counts first: wabt reserves memory for them while reading.
    if (auto checked = checkModuleLimits(bytes); !checked) return checked;
    wabt::Errors errors;
    wabt::Features features;  // wabt's defaults: MVP + bulk memory, sign-ext, multi-value, ...
    wabt::ReadBinaryOptions options(features, nullptr, /*read_debug_names=*/false,
                                    /*stop_on_first_error=*/true,
                                    /*fail_on_custom_section_error=*/false);
    wi::ModuleDesc desc;
    if (wabt::Failed(wi::ReadBinaryInterp("module.wasm", bytes.data(), bytes.size(), options,
                                          &errors, &desc))) {
      std::string text = wabt::FormatErrorsToString(errors, wabt::Location::Type::Binary);
      while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
      return Error{"not a valid wasm module: " + text};
    }
    capGrowth(desc);
    // The start function runs under the instruction budget (instantiate), not inside wabt's
    // unbounded Instance::Instantiate.
    if (!desc.starts.empty()) start_function_ = desc.starts.front().func_index;
    desc.starts.clear();
    module_ = wi::Module::New(store_, std::move(desc));
    for (const wi::ImportType& import : module_->import_types()) {
      ImportDesc d{import.module, import.name, toKind(import.type->kind), {}};
      if (auto* func = wabt::dyn_cast<wi::FuncType>(import.type.get())) d.sig = toSig(*func);
      imports_.push_back(std::move(d));
    }
    for (const wi::ExportType& export_type : module_->export_types()) {
      ExportDesc d{export_type.name, toKind(export_type.type->kind), {}};
      if (auto* func = wabt::dyn_cast<wi::FuncType>(export_type.type.get())) d.sig = toSig(*func);
      exports_.push_back(std::move(d));
    }
    return {};
  }

  const std::vector<ImportDesc>& imports() const override { return imports_; }
  const std::vector<ExportDesc>& exports() const override { return exports_; }

  Result<void> instantiate(const std::vector<HostFunction>& functions) override {
    wi::RefVec imports;
    const auto& import_types = module_->import_types();
    for (size_t i = 0; i < import_types.size(); ++i) {
      const wi::ExternType* type = import_types[i].type.get();
      if (auto* func_type = wabt::dyn_cast<wi::FuncType>(type)) {
        if (i >= functions.size() || !functions[i]) {
          return Error{"no host function for import " + import_types[i].module + "." +
                       import_types[i].name};
        }
        imports.push_back(makeHostFunc(*func_type, functions[i]).ref());
      } else if (auto* memory_type = wabt::dyn_cast<wi::MemoryType>(type)) {
        wi::MemoryType capped = *memory_type;
        capLimits(capped.limits, limits::kMaxMemoryPages);
        imports.push_back(wi::Memory::New(store_, capped).ref());
      } else {
        return Error{"unsupported import kind for " + import_types[i].module + "." +
                     import_types[i].name};
      }
    }
    wi::Trap::Ptr trap;
    instance_ = wi::Instance::Instantiate(store_, module_.ref(), imports, &trap);
    if (!instance_) {
      return Error{"instantiation failed: " +
                   (trap ? trap->message() : std::string("unknown error"))};
    }
    const auto& export_types = module_->export_types();
    for (size_t i = 0; i < export_types.size(); ++i) {
      wi::Ref ref = instance_->exports()[i];
      if (export_types[i].type->kind == wabt::ExternalKind::Func) {
        functions_.emplace_back(export_types[i].name, ref);
      } else if (export_types[i].type->kind == wabt::ExternalKind::Memory && !memory_) {
        memory_ = store_.UnsafeGet<wi::Memory>(ref);
      }
    }
    if (!memory_) {
      for (wi::Ref ref : instance_->memories()) {
        memory_ = store_.UnsafeGet<wi::Memory>(ref);
        break;
      }
    }
    if (start_function_) {
      CallOutcome started = callRef(instance_->funcs()[*start_function_], {}, "the start function");
      if (!started.ok()) return Error{"instantiation failed: start function: " + started.message};
    }
    return {};
  }

  bool hasFunction(const std::string& export_name) const override {
    return findFunction(export_name) != nullptr;
  }

  CallOutcome call(const std::string& export_name, std::span<const uint64_t> args) override {
    const wi::Ref* ref = findFunction(export_name);
    if (ref == nullptr) {
      CallOutcome outcome;
      outcome.status = CallOutcome::Status::kMissing;
      outcome.message = "no export " + export_name;
      return outcome;
    }
    return callRef(*ref, args, export_name);
  }

  // One guest call, bounded by the budget and counted; nested calls share the outermost budget.
  CallOutcome callRef(wi::Ref ref, std::span<const uint64_t> args, const std::string& what) {
    CallOutcome outcome;
    const std::string& export_name = what;
    auto func = store_.UnsafeGet<wi::Func>(ref);
    auto* defined = wabt::dyn_cast<wi::DefinedFunc>(func.get());
    const wi::FuncType& type = func->type();
    if (defined == nullptr && args.size() == type.params.size()) {
      // An imported function used as the start function: a host function, bounded by itself.
      wi::Values params;
      wi::Values results;
      wi::Trap::Ptr trap;
      if (wabt::Failed(func->Call(thread_, params, results, &trap))) {
        outcome.status = CallOutcome::Status::kTrap;
        outcome.message = trap ? trap->message() : std::string("host function trapped");
      }
      return outcome;
    }
    if (defined == nullptr || args.size() != type.params.size()) {
      outcome.status = CallOutcome::Status::kTrap;
      outcome.message =
          "cannot call " + export_name + " with " + std::to_string(args.size()) + " arguments";
      return outcome;
    }
    bool outermost = depth_ == 0;
    if (outermost) {
      // Saturating: a budget near 2^64 means "practically unlimited", not an overflow to "none".
      uint64_t spent = executed_ + host_work_;
      budget_end_ = budget_ == 0 || budget_ > std::numeric_limits<uint64_t>::max() - spent
                        ? std::numeric_limits<uint64_t>::max()
                        : spent + budget_;
      budget_hit_ = false;
    }
    uint64_t start = executed_;
    wi::Values params;
    for (size_t i = 0; i < args.size(); ++i) params.push_back(toValue(type.params[i], args[i]));

    wi::Trap::Ptr trap;
    (thread_.*privateMember(PushValuesTag{}))(type.params, params);
    wi::RunResult result = (thread_.*privateMember(PushCallTag{}))(*defined, &trap);
    ++depth_;
    while (result == wi::RunResult::Ok) {
      if (executed_ + host_work_ >= budget_end_) {
        budget_hit_ = true;
        break;
      }
      ++executed_;
      if (profile_) {
        const auto& frames = thread_.*privateMember(FramesTag{});
        if (!frames.empty()) ++profile_counts_[frames.back().func.index];
      }
      result = thread_.Step(&trap);
    }
    --depth_;
    outcome.instructions = executed_ - start;
    if (budget_hit_) {
      outcome.status = CallOutcome::Status::kBudgetExhausted;
      outcome.message = "instruction budget of " + std::to_string(budget_) + " exhausted";
      resetThread();
      return outcome;
    }
    if (result != wi::RunResult::Return) {
      outcome.status = CallOutcome::Status::kTrap;
      outcome.message = trap ? trap->message() : std::string("uncaught exception");
      resetThread();
      return outcome;
    }
    wi::Values results;
    (thread_.*privateMember(PopValuesTag{}))(type.results, &results);
    for (size_t i = 0; i < results.size(); ++i)
      outcome.results.push_back(fromValue(type.results[i], results[i]));
    return outcome;
  }

  void setInstructionBudget(uint64_t instructions) override { budget_ = instructions; }
  void chargeHostWork(uint64_t instructions) override {
    host_work_ = instructions > std::numeric_limits<uint64_t>::max() / 2 - host_work_
                     ? std::numeric_limits<uint64_t>::max() / 2
                     : host_work_ + instructions;
  }

  void enableProfile() override { profile_ = true; }
  std::vector<std::pair<uint32_t, uint64_t>> profile() const override {
    // Store refs -> module function indices (imports first, as in the binary).
    std::vector<std::pair<uint32_t, uint64_t>> out;
    const auto& funcs = instance_->funcs();
    for (const auto& [ref_index, count] : profile_counts_) {
      for (size_t i = 0; i < funcs.size(); ++i) {
        if (funcs[i].index == ref_index) out.emplace_back(static_cast<uint32_t>(i), count);
      }
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.second > b.second; });
    return out;
  }
  uint64_t instructionsExecuted() const override { return executed_; }

  uint8_t* memoryData() override { return memory_ ? memory_->UnsafeData() : nullptr; }
  uint64_t memorySize() const override { return memory_ ? memory_->ByteSize() : 0; }

 private:
  static void capLimits(wabt::Limits& limits, uint64_t cap) {
    if (!limits.has_max || limits.max > cap) {
      limits.max = std::max<uint64_t>(cap, limits.initial);
      limits.has_max = true;
    }
  }

  // table.grow and memory.grow fail (return -1, as the spec allows) past Envoy's engines' caps,
  // instead of resizing host vectors to what a module asks.
  static void capGrowth(wi::ModuleDesc& desc) {
    for (wi::TableDesc& table : desc.tables)
      capLimits(table.type.limits, limits::kMaxTableElements);
    for (wi::MemoryDesc& memory : desc.memories)
      capLimits(memory.type.limits, limits::kMaxMemoryPages);
    for (wi::ImportDesc& import : desc.imports) {
      if (auto* table = wabt::dyn_cast<wi::TableType>(import.type.type.get()))
        capLimits(table->limits, limits::kMaxTableElements);
      if (auto* memory = wabt::dyn_cast<wi::MemoryType>(import.type.type.get()))
        capLimits(memory->limits, limits::kMaxMemoryPages);
    }
  }

  wi::HostFunc::Ptr makeHostFunc(const wi::FuncType& type, HostFunction function) {
    return wi::HostFunc::New(
        store_, type,
        [this, copy = type, function = std::move(function)](
            wi::Thread&, const wi::Values& params, wi::Values& results,
            wi::Trap::Ptr* out_trap) -> wabt::Result {
          uint64_t args[16] = {};
          uint64_t outs[2] = {};
          size_t arg_count = std::min<size_t>(params.size(), 16);
          for (size_t i = 0; i < arg_count; ++i) args[i] = fromValue(copy.params[i], params[i]);
          std::string trap_message;
          if (!function(std::span<const uint64_t>(args, arg_count),
                        std::span<uint64_t>(outs, copy.results.size()), &trap_message)) {
            *out_trap = wi::Trap::New(store_, trap_message);
            return wabt::Result::Error;
          }
          for (size_t i = 0; i < copy.results.size(); ++i)
            results[i] = toValue(copy.results[i], outs[i]);
          return wabt::Result::Ok;
        });
  }

  const wi::Ref* findFunction(const std::string& name) const {
    for (const auto& [export_name, ref] : functions_) {
      if (export_name == name) return &ref;
    }
    return nullptr;
  }

  // After a trap or a budget stop the interpreter's stacks hold the abandoned frames. Only an
  // outermost call may reset them; nested calls report upward and the outermost one resets.
  void resetThread() {
    if (depth_ == 0) {
      thread_.~Thread();
      new (&thread_) wi::Thread(store_);
    }
  }

  wi::Store store_;
  wi::Thread thread_;
  wi::Module::Ptr module_;
  wi::Instance::Ptr instance_;
  wi::Memory::Ptr memory_;
  std::vector<ImportDesc> imports_;
  std::vector<ExportDesc> exports_;
  std::vector<std::pair<std::string, wi::Ref>> functions_;
  bool profile_ = false;
  std::map<size_t, uint64_t> profile_counts_;  // store ref index -> instructions executed in it
  uint64_t budget_ = 0;
  uint64_t budget_end_ = std::numeric_limits<uint64_t>::max();
  bool budget_hit_ = false;
  uint64_t executed_ = 0;
  uint64_t host_work_ = 0;  // chargeHostWork(): the host's work for the guest, in instructions
  int depth_ = 0;
  std::optional<wi::Index> start_function_;
};

}  // namespace

std::string FuncSig::text() const {
  auto name = [](ValType t) {
    return t == ValType::kI32 ? "i32" : t == ValType::kI64 ? "i64" : "?";
  };
  std::string out = "(";
  for (size_t i = 0; i < params.size(); ++i) {
    if (i > 0) out += ", ";
    out += name(params[i]);
  }
  out += ") -> ";
  if (results.empty()) {
    out += "()";
  } else if (results.size() == 1) {
    out += name(results[0]);
  } else {
    out += "(";
    for (size_t i = 0; i < results.size(); ++i) {
      if (i > 0) out += ", ";
      out += name(results[i]);
    }
    out += ")";
  }
  return out;
}

Result<std::unique_ptr<WasmEngine>> WasmEngine::parse(std::span<const uint8_t> bytes) {
  auto engine = std::make_unique<WabtEngine>();
  if (auto loaded = engine->load(bytes); !loaded) return Error{loaded.error()};
  return std::unique_ptr<WasmEngine>(std::move(engine));
}

}  // namespace tcpsteer::host
