// Autograd: gradients, backward, grad mode, and the functional grad() that supports
// higher-order derivatives (create_graph) for Sobolev training and input-gradient attacks.
#include "common.h"

namespace kd {

static std::vector<at::Tensor> tensorList(const Napi::Value& v, const char* what) {
  std::vector<at::Tensor> out;
  if (isTensorHandle(v)) {
    out.push_back(unwrapTensor(v, what));
    return out;
  }
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a tensor or an array of tensors");
  auto arr = v.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value e = arr.Get(i);
    out.push_back(e.IsNull() || e.IsUndefined() ? at::Tensor() : unwrapTensor(e, what));
  }
  return out;
}

// backward(tensors, grads|null, retainGraph, createGraph, inputs|null)
static Napi::Value Backward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto outs = tensorList(info[0], "backward tensors");
    std::vector<at::Tensor> grads;
    if (info.Length() > 1 && !info[1].IsNull() && !info[1].IsUndefined()) grads = tensorList(info[1], "backward grads");
    c10::optional<bool> retain;
    if (info.Length() > 2 && info[2].IsBoolean()) retain = info[2].As<Napi::Boolean>().Value();
    bool create = info.Length() > 3 && info[3].ToBoolean().Value();
    std::vector<at::Tensor> inputs;
    if (info.Length() > 4 && !info[4].IsNull() && !info[4].IsUndefined()) inputs = tensorList(info[4], "backward inputs");
    torch::autograd::backward(outs, grads, retain, create, inputs);
    return info.Env().Undefined();
  });
}

// grad(outputs, inputs, gradOutputs|null, retainGraph, createGraph, allowUnused) -> (tensor|null)[]
static Napi::Value Grad(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto outs = tensorList(info[0], "grad outputs");
    auto ins = tensorList(info[1], "grad inputs");
    std::vector<at::Tensor> gouts;
    if (info.Length() > 2 && !info[2].IsNull() && !info[2].IsUndefined()) gouts = tensorList(info[2], "grad_outputs");
    c10::optional<bool> retain;
    if (info.Length() > 3 && info[3].IsBoolean()) retain = info[3].As<Napi::Boolean>().Value();
    bool create = info.Length() > 4 && info[4].ToBoolean().Value();
    bool allowUnused = info.Length() > 5 && info[5].ToBoolean().Value();
    auto res = torch::autograd::grad(outs, ins, gouts, retain, create, allowUnused);
    auto arr = Napi::Array::New(info.Env(), res.size());
    for (size_t i = 0; i < res.size(); i++)
      arr.Set(i, res[i].defined() ? wrapTensor(info.Env(), res[i]) : info.Env().Null());
    return arr;
  });
}

static Napi::Value GetGrad(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const auto& g = unwrapTensor(info[0]).grad();
    return g.defined() ? wrapTensor(info.Env(), g) : info.Env().Null();
  });
}

static Napi::Value SetGrad(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto& t = unwrapTensor(info[0]);
    if (info[1].IsNull() || info[1].IsUndefined()) t.mutable_grad().reset();
    else t.mutable_grad() = unwrapTensor(info[1], "grad");
    return info.Env().Undefined();
  });
}

static Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    unwrapTensor(info[0]).requires_grad_(info[1].ToBoolean().Value());
    return info.Env().Undefined();
  });
}

static Napi::Value RequiresGrad(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value { return Napi::Boolean::New(info.Env(), unwrapTensor(info[0]).requires_grad()); });
}

static Napi::Value IsLeaf(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value { return Napi::Boolean::New(info.Env(), unwrapTensor(info[0]).is_leaf()); });
}

static Napi::Value RetainGrad(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    unwrapTensor(info[0]).retain_grad();
    return info.Env().Undefined();
  });
}

static Napi::Value GradFnName(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto fn = unwrapTensor(info[0]).grad_fn();
    return fn ? Napi::String::New(info.Env(), fn->name()) : info.Env().Null();
  });
}

static Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  bool prev = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(info[0].ToBoolean().Value());
  return Napi::Boolean::New(info.Env(), prev);
}

static Napi::Value IsGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), c10::GradMode::is_enabled());
}

void initAutograd(Napi::Env env, Napi::Object exports) {
  exports.Set("backward", Napi::Function::New(env, Backward));
  exports.Set("grad", Napi::Function::New(env, Grad));
  exports.Set("getGrad", Napi::Function::New(env, GetGrad));
  exports.Set("setGrad", Napi::Function::New(env, SetGrad));
  exports.Set("setRequiresGrad", Napi::Function::New(env, SetRequiresGrad));
  exports.Set("requiresGrad", Napi::Function::New(env, RequiresGrad));
  exports.Set("isLeaf", Napi::Function::New(env, IsLeaf));
  exports.Set("retainGrad", Napi::Function::New(env, RetainGrad));
  exports.Set("gradFnName", Napi::Function::New(env, GradFnName));
  exports.Set("setGradEnabled", Napi::Function::New(env, SetGradEnabled));
  exports.Set("isGradEnabled", Napi::Function::New(env, IsGradEnabled));
}

}  // namespace kd
