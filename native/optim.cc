// libtorch's optimizers (SGD with momentum/Nesterov/weight decay, Adam, AdamW) behind handles,
// with per-group learning rates that can change every step and byte-serialised state so a
// resumed run continues exactly where it stopped.
#include "common.h"
#include <sstream>

namespace kd {

const napi_type_tag kOptimizerTag = {0x6b646973744c5431ULL, 0x6f7074696d000002ULL};

struct OptimBox {
  std::unique_ptr<torch::optim::Optimizer> opt;
};

static double numOr(const Napi::Object& o, const char* key, double dflt) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : dflt;
}
static bool boolOr(const Napi::Object& o, const char* key, bool dflt) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : dflt;
}

template <typename Options>
static void commonAdamOptions(Options& opts, const Napi::Object& o) {
  opts.lr(numOr(o, "lr", opts.lr()));
  opts.eps(numOr(o, "eps", opts.eps()));
  opts.weight_decay(numOr(o, "weightDecay", opts.weight_decay()));
  opts.amsgrad(boolOr(o, "amsgrad", opts.amsgrad()));
  Napi::Value b = o.Get("betas");
  if (b.IsArray()) {
    auto arr = b.As<Napi::Array>();
    opts.betas(std::make_tuple(arr.Get(0u).As<Napi::Number>().DoubleValue(), arr.Get(1u).As<Napi::Number>().DoubleValue()));
  }
}

static std::unique_ptr<torch::optim::OptimizerOptions> makeOptions(const std::string& kind, const Napi::Object& o) {
  if (kind == "sgd") {
    auto opts = std::make_unique<torch::optim::SGDOptions>(numOr(o, "lr", 0.01));
    opts->momentum(numOr(o, "momentum", 0)).dampening(numOr(o, "dampening", 0));
    opts->weight_decay(numOr(o, "weightDecay", 0)).nesterov(boolOr(o, "nesterov", false));
    return opts;
  }
  if (kind == "adam") {
    auto opts = std::make_unique<torch::optim::AdamOptions>();
    commonAdamOptions(*opts, o);
    return opts;
  }
  if (kind == "adamw") {
    auto opts = std::make_unique<torch::optim::AdamWOptions>();
    commonAdamOptions(*opts, o);
    return opts;
  }
  throw std::invalid_argument("unknown optimizer '" + kind + "' (known: sgd, adam, adamw)");
}

// optimCreate(kind, groups: {params: tensor[], ...overrides}[], defaults)
static Napi::Value Create(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto kind = info[0].As<Napi::String>().Utf8Value();
    auto groupsJs = info[1].As<Napi::Array>();
    auto defaults = info[2].As<Napi::Object>();
    std::vector<torch::optim::OptimizerParamGroup> groups;
    for (uint32_t g = 0; g < groupsJs.Length(); g++) {
      auto gj = groupsJs.Get(g).As<Napi::Object>();
      auto paramsJs = gj.Get("params").As<Napi::Array>();
      std::vector<at::Tensor> params;
      for (uint32_t i = 0; i < paramsJs.Length(); i++) params.push_back(unwrapTensor(paramsJs.Get(i), "optimizer parameter"));
      // group options = defaults overridden by the group's own keys
      auto merged = Napi::Object::New(info.Env());
      auto dk = defaults.GetPropertyNames();
      for (uint32_t i = 0; i < dk.Length(); i++) merged.Set(dk.Get(i), defaults.Get(dk.Get(i)));
      auto gk = gj.GetPropertyNames();
      for (uint32_t i = 0; i < gk.Length(); i++) merged.Set(gk.Get(i), gj.Get(gk.Get(i)));
      groups.emplace_back(params, makeOptions(kind, merged));
    }
    auto box = new OptimBox();
    if (kind == "sgd") {
      box->opt = std::make_unique<torch::optim::SGD>(groups, *static_cast<torch::optim::SGDOptions*>(makeOptions(kind, defaults).get()));
    } else if (kind == "adam") {
      box->opt = std::make_unique<torch::optim::Adam>(groups, *static_cast<torch::optim::AdamOptions*>(makeOptions(kind, defaults).get()));
    } else {
      box->opt = std::make_unique<torch::optim::AdamW>(groups, *static_cast<torch::optim::AdamWOptions*>(makeOptions(kind, defaults).get()));
    }
    return wrapObject(info.Env(), box, &kOptimizerTag);
  });
}

static OptimBox* box(const Napi::Value& v) { return unwrapObject<OptimBox>(v, &kOptimizerTag, "optimizer"); }

static Napi::Value Step(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    torch::NoGradGuard ng;
    box(info[0])->opt->step();
    return info.Env().Undefined();
  });
}

// zeroGrad(opt, setToNone=true): dropping the gradient is cheaper than zeroing it.
static Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    bool toNone = info.Length() < 2 || info[1].ToBoolean().Value();
    for (auto& g : box(info[0])->opt->param_groups())
      for (auto& p : g.params()) {
        if (!p.grad().defined()) continue;
        if (toNone) p.mutable_grad().reset();
        else {
          p.mutable_grad().detach_();
          p.mutable_grad().zero_();
        }
      }
    return info.Env().Undefined();
  });
}

// setLr(opt, lr, groupIndex?) sets one group's or every group's learning rate.
static Napi::Value SetLr(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    double lr = info[1].As<Napi::Number>().DoubleValue();
    auto& groups = box(info[0])->opt->param_groups();
    if (info.Length() > 2 && info[2].IsNumber()) {
      auto i = info[2].As<Napi::Number>().Uint32Value();
      if (i >= groups.size()) throw Napi::RangeError::New(info.Env(), "setLr: no parameter group " + std::to_string(i));
      groups[i].options().set_lr(lr);
    } else {
      for (auto& g : groups) g.options().set_lr(lr);
    }
    return info.Env().Undefined();
  });
}

static Napi::Value GetLr(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto& groups = box(info[0])->opt->param_groups();
    auto arr = Napi::Array::New(info.Env(), groups.size());
    for (size_t i = 0; i < groups.size(); i++) arr.Set(i, Napi::Number::New(info.Env(), groups[i].options().get_lr()));
    return arr;
  });
}

static Napi::Value Save(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    torch::serialize::OutputArchive ar;
    box(info[0])->opt->save(ar);
    std::ostringstream os;
    ar.save_to(os);
    auto s = os.str();
    return Napi::Buffer<char>::Copy(info.Env(), s.data(), s.size());
  });
}

static Napi::Value Load(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto buf = info[1].As<Napi::Buffer<char>>();
    std::istringstream is(std::string(buf.Data(), buf.Length()));
    torch::serialize::InputArchive ar;
    ar.load_from(is);
    box(info[0])->opt->load(ar);
    return info.Env().Undefined();
  });
}

void initOptim(Napi::Env env, Napi::Object exports) {
  exports.Set("optimCreate", Napi::Function::New(env, Create));
  exports.Set("optimStep", Napi::Function::New(env, Step));
  exports.Set("optimZeroGrad", Napi::Function::New(env, ZeroGrad));
  exports.Set("optimSetLr", Napi::Function::New(env, SetLr));
  exports.Set("optimGetLr", Napi::Function::New(env, GetLr));
  exports.Set("optimSave", Napi::Function::New(env, Save));
  exports.Set("optimLoad", Napi::Function::New(env, Load));
}

}  // namespace kd
