// TorchScript modules: load a file written by torch.jit.save, run it (its outputs stay
// differentiable with respect to its inputs), and see its parameters and submodules.
#include "common.h"

namespace kd {

const napi_type_tag kModuleTag = {0x6b646973744c5431ULL, 0x6a69746d6f640004ULL};

using JitModule = torch::jit::Module;

static JitModule* mod(const Napi::Value& v) { return unwrapObject<JitModule>(v, &kModuleTag, "TorchScript module"); }

static c10::IValue jsInput(const Napi::Value& v) {
  if (isTensorHandle(v)) return unwrapTensor(v, "module input");
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value();
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d == std::trunc(d)) return static_cast<int64_t>(d);
    return d;
  }
  if (v.IsString()) return v.As<Napi::String>().Utf8Value();
  if (v.IsArray()) {
    auto arr = v.As<Napi::Array>();
    std::vector<c10::IValue> el;
    for (uint32_t i = 0; i < arr.Length(); i++) el.push_back(jsInput(arr.Get(i)));
    return c10::ivalue::Tuple::create(std::move(el));
  }
  if (v.IsNull() || v.IsUndefined()) return c10::IValue();
  throw Napi::TypeError::New(v.Env(), "TorchScript input must be a tensor, number, boolean, string or array");
}

static Napi::Value Load(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto path = info[0].As<Napi::String>().Utf8Value();
    auto* m = new JitModule(torch::jit::load(path, c10::Device("cpu")));
    return wrapObject(info.Env(), m, &kModuleTag);
  });
}

// callMethod(module, name, inputs[])
static Napi::Value CallMethod(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* m = mod(info[0]);
    auto name = info[1].As<Napi::String>().Utf8Value();
    auto arr = info[2].As<Napi::Array>();
    std::vector<c10::IValue> inputs;
    for (uint32_t i = 0; i < arr.Length(); i++) inputs.push_back(jsInput(arr.Get(i)));
    auto method = m->find_method(name);
    if (!method) throw Napi::Error::New(info.Env(), "TorchScript module has no method '" + name + "'");
    return ivalueToJs(info.Env(), (*method)(std::move(inputs)));
  });
}

static Napi::Value NamedTensors(const Napi::CallbackInfo& info, bool buffers) {
  return guarded(info, [&]() -> Napi::Value {
    auto* m = mod(info[0]);
    auto arr = Napi::Array::New(info.Env());
    uint32_t k = 0;
    auto add = [&](const std::string& n, const at::Tensor& t) {
      auto pair = Napi::Array::New(info.Env(), 2);
      pair.Set(0u, Napi::String::New(info.Env(), n));
      pair.Set(1u, wrapTensor(info.Env(), t));
      arr.Set(k++, pair);
    };
    if (buffers) for (const auto& p : m->named_buffers(true)) add(p.name, p.value);
    else for (const auto& p : m->named_parameters(true)) add(p.name, p.value);
    return arr;
  });
}
static Napi::Value NamedParameters(const Napi::CallbackInfo& info) { return NamedTensors(info, false); }
static Napi::Value NamedBuffers(const Napi::CallbackInfo& info) { return NamedTensors(info, true); }

static Napi::Value NamedModules(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* m = mod(info[0]);
    auto arr = Napi::Array::New(info.Env());
    uint32_t k = 0;
    for (const auto& p : m->named_modules()) {
      if (p.name.empty()) continue;
      auto pair = Napi::Array::New(info.Env(), 2);
      pair.Set(0u, Napi::String::New(info.Env(), p.name));
      pair.Set(1u, Napi::String::New(info.Env(), p.value.type()->name() ? p.value.type()->name()->name() : ""));
      arr.Set(k++, pair);
    }
    return arr;
  });
}

// submodule(module, "layer1.0") -> a module handle sharing the parent's parameters.
static Napi::Value Submodule(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    JitModule cur = *mod(info[0]);
    auto path = info[1].As<Napi::String>().Utf8Value();
    size_t start = 0;
    while (start <= path.size()) {
      size_t dot = path.find('.', start);
      auto part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (!cur.hasattr(part) || !cur.attr(part).isModule())
        throw Napi::Error::New(info.Env(), "TorchScript module has no submodule '" + path + "'");
      cur = cur.attr(part).toModule();
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    return wrapObject(info.Env(), new JitModule(cur), &kModuleTag);
  });
}

static Napi::Value SetTraining(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    mod(info[0])->train(info[1].ToBoolean().Value());
    return info.Env().Undefined();
  });
}

static Napi::Value IsTraining(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value { return Napi::Boolean::New(info.Env(), mod(info[0])->is_training()); });
}

static Napi::Value MethodNames(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto methods = mod(info[0])->get_methods();
    auto arr = Napi::Array::New(info.Env(), methods.size());
    for (size_t i = 0; i < methods.size(); i++) arr.Set(i, Napi::String::New(info.Env(), methods[i].name()));
    return arr;
  });
}

void initJit(Napi::Env env, Napi::Object exports) {
  exports.Set("jitLoad", Napi::Function::New(env, Load));
  exports.Set("jitCallMethod", Napi::Function::New(env, CallMethod));
  exports.Set("jitNamedParameters", Napi::Function::New(env, NamedParameters));
  exports.Set("jitNamedBuffers", Napi::Function::New(env, NamedBuffers));
  exports.Set("jitNamedModules", Napi::Function::New(env, NamedModules));
  exports.Set("jitSubmodule", Napi::Function::New(env, Submodule));
  exports.Set("jitSetTraining", Napi::Function::New(env, SetTraining));
  exports.Set("jitIsTraining", Napi::Function::New(env, IsTraining));
  exports.Set("jitMethodNames", Napi::Function::New(env, MethodNames));
}

}  // namespace kd
