// TorchScript modules: load a file written by torch.jit.save, run it (its outputs stay
// differentiable with respect to its inputs), and see its parameters and submodules; run
// forward() with the outputs of named submodules as extra results (feature distillation).
#include "common.h"
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>

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

// ---- forward() with submodule outputs ------------------------------------------------------
// libtorch's C++ Module has no forward hooks. A submodule's output is a value in forward()'s
// graph once the calls leading to it are inlined: a copy of the graph has every
// prim::CallMethod on a module it can name (a GetAttr chain from `self`) inlined, repeatedly,
// so nested calls surface; when the inlined call is the forward() of a requested path, the value
// it returned is registered as an extra graph output. The copy then returns (forward's output,
// feature, ...) as one tuple and runs as a GraphFunction with the module object as `self`, so it
// reads the module's own parameters and training flag. The module itself is not changed.

const napi_type_tag kFeatureFnTag = {0x6b646973744c5431ULL, 0x6a69746665617405ULL};

struct FeatureFn {
  JitModule module;  // keeps the module object alive for `self`
  std::shared_ptr<torch::jit::GraphFunction> fn;
};

// "layer2.0.conv1" for a module value reached from `self` through attribute reads; nullopt otherwise.
static c10::optional<std::string> modulePath(torch::jit::Value* v, torch::jit::Value* self) {
  if (v == self) return std::string();
  auto* n = v->node();
  auto cls = v->type()->cast<c10::ClassType>();
  if (n->kind() != c10::prim::GetAttr || !cls || !cls->is_module()) return c10::nullopt;
  auto parent = modulePath(n->input(0), self);
  if (!parent) return c10::nullopt;
  const auto& name = n->s(c10::attr::name);
  return parent->empty() ? name : *parent + "." + name;
}

static void collectCalls(torch::jit::Block* b, std::vector<torch::jit::Node*>& out) {
  for (auto* n : b->nodes()) {
    if (n->kind() == c10::prim::CallMethod) out.push_back(n);
    for (auto* sub : n->blocks()) collectCalls(sub, out);
  }
}

static std::string joinPaths(const std::vector<std::string>& ps) {
  std::string s;
  for (const auto& p : ps) s += (s.empty() ? "" : ", ") + p;
  return s.empty() ? "none" : s;
}

// withSubmoduleOutputs(module, paths[]) -> a function handle; errors name the path at fault.
static Napi::Value WithSubmoduleOutputs(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    using namespace torch::jit;
    JitModule m = *mod(info[0]);
    auto arr = info[1].As<Napi::Array>();
    std::vector<std::string> wanted;
    for (uint32_t i = 0; i < arr.Length(); i++) wanted.push_back(arr.Get(i).As<Napi::String>().Utf8Value());
    auto method = m.find_method("forward");
    if (!method) throw std::runtime_error("the TorchScript module has no forward() method");
    auto graph = toGraphFunction(method->function()).graph()->copy();
    auto* self = graph->inputs().at(0);
    std::map<std::string, int> calls;           // forward() calls per module path
    std::map<std::string, size_t> outputIndex;  // requested path -> its graph output
    std::set<std::string> inBlock;              // requested paths called inside a loop or branch
    std::set<std::string> want(wanted.begin(), wanted.end());
    for (bool again = true; again;) {
      again = false;
      std::vector<Node*> pending;
      collectCalls(graph->block(), pending);
      for (auto* n : pending) {
        auto path = modulePath(n->input(0), self);
        auto cls = n->input(0)->type()->cast<c10::ClassType>();
        if (!path || !cls) continue;
        auto* callee = cls->findMethod(n->s(c10::attr::name));
        auto* gf = callee ? tryToGraphFunction(*callee) : nullptr;
        if (!gf) continue;
        // A traced module called a second time gets its call recorded as forward1, forward2, ...
        const auto& mname = n->s(c10::attr::name);
        bool isForward = !path->empty() && mname.rfind("forward", 0) == 0 &&
                         std::all_of(mname.begin() + 7, mname.end(), [](char c) { return c >= '0' && c <= '9'; });
        bool top = n->owningBlock() == graph->block();
        // The callee's own graph, not its optimized_graph(), which has its calls inlined already (and their paths lost).
        auto outs = inlineCallTo(n, gf, gf->graph().get());
        again = true;
        if (!isForward) continue;
        calls[*path]++;
        if (!want.count(*path)) continue;
        if (!top) inBlock.insert(*path);
        else if (outs.size() == 1) outputIndex[*path] = graph->registerOutput(outs[0]);
      }
    }
    for (const auto& p : wanted) {
      int k = calls.count(p) ? calls[p] : 0;
      std::vector<std::string> once;
      for (const auto& [q, c] : calls) if (c == 1) once.push_back(q);
      if (k == 0) {
        throw std::runtime_error("submodule '" + p + "' is never called by forward(), so it has no output to capture (submodules forward() calls once: " + joinPaths(once) + ")");
      }
      if (k > 1) {
        throw std::runtime_error("submodule '" + p + "' is called " + std::to_string(k) + " times by forward(), so it has no single output (e.g. one activation module reused); " +
                                 "name a module that contains those calls, or one forward() calls once: " + joinPaths(once));
      }
      if (inBlock.count(p)) throw std::runtime_error("submodule '" + p + "' is called inside a loop or an if-branch of forward(), so its output is not a value of forward() itself");
    }
    std::vector<Value*> results{graph->outputs().at(0)};
    for (const auto& p : wanted) results.push_back(graph->outputs().at(outputIndex.at(p)));
    {
      WithInsertPoint guard(graph->return_node());
      auto* tuple = graph->insertNode(graph->createTuple(results))->output();
      while (!graph->outputs().empty()) graph->eraseOutput(graph->outputs().size() - 1);
      graph->registerOutput(tuple);
    }
    graph->lint();
    auto fn = std::make_shared<GraphFunction>("forward_with_submodule_outputs", graph, nullptr);
    return wrapObject(info.Env(), new FeatureFn{m, fn}, &kFeatureFnTag);
  });
}

// runWithSubmoduleOutputs(fn, inputs[]) -> [forward's output, feature, ...]
static Napi::Value RunWithSubmoduleOutputs(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* f = unwrapObject<FeatureFn>(info[0], &kFeatureFnTag, "TorchScript feature function");
    auto arr = info[1].As<Napi::Array>();
    torch::jit::Stack stack{f->module._ivalue()};
    for (uint32_t i = 0; i < arr.Length(); i++) stack.push_back(jsInput(arr.Get(i)));
    f->fn->run(stack);
    return ivalueToJs(info.Env(), stack.back());
  });
}

void initJit(Napi::Env env, Napi::Object exports) {
  exports.Set("jitWithSubmoduleOutputs", Napi::Function::New(env, WithSubmoduleOutputs));
  exports.Set("jitRunWithSubmoduleOutputs", Napi::Function::New(env, RunWithSubmoduleOutputs));
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
