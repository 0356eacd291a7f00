// Addon entry point: threads, seeds, generators and versions; the rest lives in the init* files.
#include "common.h"
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

namespace kd {

const napi_type_tag kGeneratorTag = {0x6b646973744c5431ULL, 0x67656e0000000003ULL};

static Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    torch::manual_seed(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()));
    return info.Env().Undefined();
  });
}

static Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    at::set_num_threads(info[0].As<Napi::Number>().Int32Value());
    return info.Env().Undefined();
  });
}

static Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

static Napi::Value SetNumInteropThreads(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    at::set_num_interop_threads(info[0].As<Napi::Number>().Int32Value());
    return info.Env().Undefined();
  });
}

static at::Generator* gen(const Napi::Value& v) { return unwrapObject<at::Generator>(v, &kGeneratorTag, "generator"); }

// generatorCreate(seed) -> an independent CPU generator.
static Napi::Value GeneratorCreate(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto g = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()));
    return wrapObject(info.Env(), new at::Generator(g), &kGeneratorTag);
  });
}

// RNG state as a byte tensor, of a generator handle or (null) the default generator: what a
// checkpoint stores so that a resumed run draws the same random numbers.
static Napi::Value GetRngState(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    at::Generator g = info[0].IsNull() || info[0].IsUndefined() ? at::detail::getDefaultCPUGenerator() : *gen(info[0]);
    std::lock_guard<std::mutex> lock(g.mutex());
    return wrapTensor(info.Env(), g.get_state());
  });
}

static Napi::Value SetRngState(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    at::Generator g = info[0].IsNull() || info[0].IsUndefined() ? at::detail::getDefaultCPUGenerator() : *gen(info[0]);
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_state(unwrapTensor(info[1], "rng state"));
    return info.Env().Undefined();
  });
}

static Napi::Value GeneratorSeed(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* g = gen(info[0]);
    std::lock_guard<std::mutex> lock(g->mutex());
    g->set_current_seed(static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value()));
    return info.Env().Undefined();
  });
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  initAllocator(env, exports);  // first: tensors made from here on use it
  exports.Set("torchVersion", Napi::String::New(env, TORCH_VERSION));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads));
  exports.Set("setNumInteropThreads", Napi::Function::New(env, SetNumInteropThreads));
  exports.Set("generatorCreate", Napi::Function::New(env, GeneratorCreate));
  exports.Set("generatorSeed", Napi::Function::New(env, GeneratorSeed));
  exports.Set("getRngState", Napi::Function::New(env, GetRngState));
  exports.Set("setRngState", Napi::Function::New(env, SetRngState));
  initTensor(env, exports);
  initDispatch(env, exports);
  initAutograd(env, exports);
  initOptim(env, exports);
  initJit(env, exports);
  initDistributed(env, exports);
  initProfiler(env, exports);
  return exports;
}

}  // namespace kd

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return kd::Init(env, exports); }
NODE_API_MODULE(kdistill, InitAddon)
