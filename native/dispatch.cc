// One generic entry point to every ATen operator. The TypeScript layer resolves an operator by
// name and overload once (opFind), then calls it with JS values (opCall). Arguments are
// converted guided by the operator's schema, so one binding serves every op with autograd,
// type promotion and broadcasting exactly as in PyTorch.
#include "common.h"
#include <ATen/core/dispatch/Dispatcher.h>

namespace kd {

namespace {

std::vector<c10::OperatorHandle> gOps;

[[noreturn]] void argError(Napi::Env env, const c10::FunctionSchema& s, const c10::Argument& a, const std::string& why) {
  throw Napi::TypeError::New(env, s.name() + (s.overload_name().empty() ? "" : "." + s.overload_name()) +
                                      ": argument '" + a.name() + "' " + why + " (schema: " + c10::toString(s) + ")");
}

c10::IValue jsToIValue(Napi::Env env, const Napi::Value& v, const c10::TypePtr& type, const c10::FunctionSchema& s,
                       const c10::Argument& a) {
  using K = c10::TypeKind;
  switch (type->kind()) {
    case K::TensorType:
      if (!isTensorHandle(v)) argError(env, s, a, "must be a tensor");
      return unwrapTensor(v, a.name().c_str());
    case K::OptionalType:
      if (v.IsNull() || v.IsUndefined()) return c10::IValue();
      return jsToIValue(env, v, type->castRaw<c10::OptionalType>()->getElementType(), s, a);
    case K::IntType:
    case K::SymIntType:
    case K::ScalarTypeType:
    case K::LayoutType:
    case K::MemoryFormatType:
      if (v.IsBoolean()) return static_cast<int64_t>(v.As<Napi::Boolean>().Value());
      if (!v.IsNumber()) argError(env, s, a, "must be an integer");
      return v.As<Napi::Number>().Int64Value();
    case K::FloatType:
      if (!v.IsNumber()) argError(env, s, a, "must be a number");
      return v.As<Napi::Number>().DoubleValue();
    case K::BoolType:
      if (!v.IsBoolean()) argError(env, s, a, "must be a boolean");
      return v.As<Napi::Boolean>().Value();
    case K::NumberType: {  // Scalar: integral JS numbers become int64 scalars, others double
      if (v.IsBoolean()) return c10::IValue(c10::Scalar(v.As<Napi::Boolean>().Value()));
      if (!v.IsNumber()) argError(env, s, a, "must be a number");
      double d = v.As<Napi::Number>().DoubleValue();
      if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.0e15)
        return c10::IValue(c10::Scalar(static_cast<int64_t>(d)));
      return c10::IValue(c10::Scalar(d));
    }
    case K::StringType:
      if (!v.IsString()) argError(env, s, a, "must be a string");
      return v.As<Napi::String>().Utf8Value();
    case K::DeviceObjType:
      if (!v.IsString()) argError(env, s, a, "must be a device string such as 'cpu'");
      return c10::Device(v.As<Napi::String>().Utf8Value());
    case K::GeneratorType: {
      return *unwrapObject<at::Generator>(v, &kGeneratorTag, "generator");
    }
    case K::ListType: {
      auto elem = type->castRaw<c10::ListType>()->getElementType();
      auto ek = elem->kind();
      if (ek == K::IntType || ek == K::SymIntType) {
        auto xs = toIntVector(v, a.name().c_str());
        if (xs.size() == 1 && a.N() && *a.N() > 1) xs.assign(*a.N(), xs[0]);  // int[2] stride=1 -> [1,1]
        return c10::IValue(xs);
      }
      if (!v.IsArray()) argError(env, s, a, "must be an array");
      auto arr = v.As<Napi::Array>();
      uint32_t n = arr.Length();
      if (ek == K::TensorType) {
        c10::List<at::Tensor> out;
        out.reserve(n);
        for (uint32_t i = 0; i < n; i++) out.push_back(unwrapTensor(arr.Get(i), a.name().c_str()));
        return out;
      }
      if (ek == K::OptionalType) {
        c10::List<c10::optional<at::Tensor>> out;
        for (uint32_t i = 0; i < n; i++) {
          Napi::Value e = arr.Get(i);
          if (e.IsNull() || e.IsUndefined()) out.push_back(c10::nullopt);
          else out.push_back(unwrapTensor(e, a.name().c_str()));
        }
        return out;
      }
      if (ek == K::FloatType) {
        std::vector<double> out;
        for (uint32_t i = 0; i < n; i++) out.push_back(arr.Get(i).As<Napi::Number>().DoubleValue());
        return out;
      }
      if (ek == K::BoolType) {
        c10::List<bool> out;
        for (uint32_t i = 0; i < n; i++) out.push_back(arr.Get(i).As<Napi::Boolean>().Value());
        return out;
      }
      argError(env, s, a, "has a list type kdistill cannot pass: " + type->str());
    }
    default:
      argError(env, s, a, "has a type kdistill cannot pass: " + type->str());
  }
}

}  // namespace

Napi::Value ivalueToJs(Napi::Env env, const c10::IValue& v) {
  if (v.isTensor()) return v.toTensor().defined() ? wrapTensor(env, v.toTensor()) : env.Null();
  if (v.isNone()) return env.Null();
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isString()) return Napi::String::New(env, v.toStringRef());
  if (v.isTensorList()) {
    auto l = v.toTensorList();
    auto arr = Napi::Array::New(env, l.size());
    for (size_t i = 0; i < l.size(); i++) arr.Set(i, wrapTensor(env, l.get(i)));
    return arr;
  }
  if (v.isTuple()) {
    auto& el = v.toTupleRef().elements();
    auto arr = Napi::Array::New(env, el.size());
    for (size_t i = 0; i < el.size(); i++) arr.Set(i, ivalueToJs(env, el[i]));
    return arr;
  }
  if (v.isList()) {
    auto l = v.toListRef();
    auto arr = Napi::Array::New(env, l.size());
    for (size_t i = 0; i < l.size(); i++) arr.Set(i, ivalueToJs(env, l[i]));
    return arr;
  }
  if (v.isGenericDict()) {
    auto obj = Napi::Object::New(env);
    for (const auto& kv : v.toGenericDict()) {
      std::string key = kv.key().isString() ? kv.key().toStringRef() : c10::toString(kv.key().type()) ;
      if (kv.key().isInt()) key = std::to_string(kv.key().toInt());
      obj.Set(key, ivalueToJs(env, kv.value()));
    }
    return obj;
  }
  if (v.isDoubleList() || v.isIntList() || v.isBoolList()) return ivalueToJs(env, c10::IValue(v.toList()));
  throw Napi::TypeError::New(env, "cannot convert a value of type " + v.type()->str() + " to JavaScript");
}

// opFind(name, overload) -> id. Throws a clear error for unknown operators.
static Napi::Value OpFind(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto name = info[0].As<Napi::String>().Utf8Value();
    auto overload = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : std::string();
    auto h = c10::Dispatcher::singleton().findSchema({name, overload});
    if (!h) throw Napi::Error::New(info.Env(), "unknown operator " + name + (overload.empty() ? "" : "." + overload));
    gOps.push_back(*h);
    return Napi::Number::New(info.Env(), static_cast<double>(gOps.size() - 1));
  });
}

static Napi::Value OpSchema(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto id = info[0].As<Napi::Number>().Uint32Value();
    if (id >= gOps.size()) throw Napi::RangeError::New(info.Env(), "bad operator id");
    return Napi::String::New(info.Env(), c10::toString(gOps[id].schema()));
  });
}

// opCall(id, args[]) -> a tensor, an array of returns, a number, or undefined for no return.
// Missing trailing arguments take the schema's defaults.
static Napi::Value OpCall(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto env = info.Env();
    auto id = info[0].As<Napi::Number>().Uint32Value();
    if (id >= gOps.size()) throw Napi::RangeError::New(env, "bad operator id");
    const auto& op = gOps[id];
    const auto& schema = op.schema();
    const auto& sargs = schema.arguments();
    auto jsArgs = info[1].As<Napi::Array>();
    uint32_t given = jsArgs.Length();
    if (given > sargs.size())
      throw Napi::TypeError::New(env, schema.name() + ": " + std::to_string(given) + " arguments given, schema takes " +
                                          std::to_string(sargs.size()) + " (" + c10::toString(schema) + ")");
    torch::jit::Stack stack;
    stack.reserve(sargs.size());
    for (size_t i = 0; i < sargs.size(); i++) {
      const auto& a = sargs[i];
      Napi::Value v = i < given ? jsArgs.Get(static_cast<uint32_t>(i)) : env.Undefined();
      if (v.IsUndefined()) {
        if (a.default_value()) {
          stack.push_back(*a.default_value());
          continue;
        }
        if (a.type()->kind() == c10::TypeKind::OptionalType) {
          stack.emplace_back();
          continue;
        }
        argError(env, schema, a, "is required");
      }
      stack.push_back(jsToIValue(env, v, a.type(), schema, a));
    }
    op.callBoxed(&stack);
    bool discard = info.Length() > 2 && info[2].ToBoolean().Value();
    if (discard || stack.empty()) return env.Undefined();
    if (stack.size() == 1) return ivalueToJs(env, stack[0]);
    auto arr = Napi::Array::New(env, stack.size());
    for (size_t i = 0; i < stack.size(); i++) arr.Set(i, ivalueToJs(env, stack[i]));
    return arr;
  });
}

void initDispatch(Napi::Env env, Napi::Object exports) {
  exports.Set("opFind", Napi::Function::New(env, OpFind));
  exports.Set("opSchema", Napi::Function::New(env, OpSchema));
  exports.Set("opCall", Napi::Function::New(env, OpCall));
}

}  // namespace kd
