{
  "targets": [
    {
      "target_name": "kdistill",
      "sources": [
        "native/addon.cc",
        "native/allocator.cc",
        "native/tensor.cc",
        "native/dispatch.cc",
        "native/autograd.cc",
        "native/optim.cc",
        "native/jit.cc",
        "native/distributed.cc",
        "native/profiler.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/libtorch-paths.mjs include)"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++14"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
      "libraries": [
        "-L<!(node scripts/libtorch-paths.mjs libdir)",
        "-Wl,-rpath,<!(node scripts/libtorch-paths.mjs libdir)",
        "-ltorch", "-ltorch_cpu", "-lc10"
      ]
    }
  ]
}
