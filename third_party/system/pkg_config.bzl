"""Repository rule wrapping Debian's system libraries once.

`system_libraries(name = "system")` runs pkg-config for each library below and
writes a BUILD file of cc_library targets (`@system//:grpc`, `@system//:absl`,
...) carrying the compile and link flags. BUILD files elsewhere depend on the
aliases in //third_party/system and never repeat a flag.

The CUDA toolkit is optional: when /usr/local/cuda (or $CUDA_PATH) holds
cuda_runtime.h, `@system//:cuda` links libcudart and `@system//:cuda.bzl`
exports HAS_CUDA = True; otherwise the target is empty and HAS_CUDA = False.
"""

# name -> (pkg-config modules, extra linkopts)
_LIBRARIES = {
    "absl": ([
        "absl_base",
        "absl_flags",
        "absl_flags_parse",
        "absl_flags_usage",
        "absl_hash",
        "absl_raw_hash_set",
        "absl_random_random",
        "absl_status",
        "absl_statusor",
        "absl_str_format_internal",
        "absl_strings",
        "absl_synchronization",
        "absl_time",
    ], []),
    "protobuf": (["protobuf"], []),
    "grpc": (["grpc++", "absl_synchronization"], []),
    "grpc_reflection": ([], ["-lgrpc++_reflection"]),
    "gtest": (["gtest", "gmock"], []),
    "gtest_main": (["gtest_main", "gmock"], []),
    "benchmark": (["benchmark"], ["-lpthread"]),
    "benchmark_main": ([], ["-lbenchmark_main", "-lbenchmark", "-lpthread"]),
    "libdrm": (["libdrm"], []),
    "libsystemd": (["libsystemd"], []),
    "prometheus": (["prometheus-cpp-pull", "prometheus-cpp-core"], []),
}

def _pkg_config(ctx, what, modules):
    if not modules:
        return []
    result = ctx.execute(["pkg-config", what] + modules)
    if result.return_code != 0:
        fail("pkg-config %s %s failed (install the Debian -dev packages; see README.md): %s" %
             (what, " ".join(modules), result.stderr))
    return [f for f in result.stdout.strip().split(" ") if f]

def _system_libraries_impl(ctx):
    build = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, (modules, extra) in _LIBRARIES.items():
        cflags = _pkg_config(ctx, "--cflags", modules)

        # Debian's pkg-config prints -I/usr/include/... for some modules; keep
        # them as copts (include paths outside the workspace are not "includes").
        linkopts = _pkg_config(ctx, "--libs", modules) + extra
        build.append("cc_library(\n    name = %r,\n    copts = %r,\n    linkopts = %r,\n)\n" %
                     (name, cflags, linkopts))

    cuda_path = ctx.os.environ.get("CUDA_PATH", "/usr/local/cuda")
    has_cuda = ctx.path(cuda_path + "/include/cuda_runtime.h").exists
    if has_cuda:
        ctx.symlink(cuda_path + "/include", "cuda/include")
        lib = cuda_path + "/lib64"
        build.append("""cc_library(
    name = "cuda",
    hdrs = glob(["cuda/include/**/*.h", "cuda/include/**/*.hpp"]),
    includes = ["cuda/include"],
    linkopts = ["-L{lib}", "-Wl,-rpath,{lib}", "-lcudart", "-ldl", "-lrt", "-lpthread"],
)
""".format(lib = lib))
    else:
        build.append('cc_library(name = "cuda")\n')
    ctx.file("BUILD", "\n".join(build))
    ctx.file("cuda.bzl", "HAS_CUDA = %s\n" % ("True" if has_cuda else "False"))

system_libraries = repository_rule(
    implementation = _system_libraries_impl,
    environ = ["CUDA_PATH", "PKG_CONFIG_PATH"],
    local = True,
)
