"""gpumig_fuzz_test: one fuzz target, built two ways.

Ordinary builds (gcc; default or --config=asan): a cc_test that links
//tests/fuzz:fuzz_main, a replay driver, and runs every input of
tests/fuzz/corpus/<corpus>/ -- so `bazel test //...` keeps the corpus
passing, under ASan too.

With --define fuzz=1 (the `fuzz` config of .bazelrc: clang, libFuzzer,
ASan, UBSan; see tests/fuzz/run_fuzzers.sh): the same target links
-fsanitize=fuzzer instead and is a libFuzzer binary. Its test arguments
("-runs=0 tests/fuzz/corpus/<corpus>") then replay the corpus once too.
"""

def gpumig_fuzz_test(name, srcs, deps = [], local_defines = [], corpus = None, size = "small"):
    # corpus/<name without "_fuzzer">/ by default.
    if not corpus:
        corpus = name[:-len("_fuzzer")] if name.endswith("_fuzzer") else name
    native.cc_test(
        name = name,
        size = size,
        srcs = srcs,
        local_defines = local_defines,
        deps = deps + select({
            "//tests/fuzz:fuzzing": [],
            "//conditions:default": ["//tests/fuzz:fuzz_main"],
        }),
        linkopts = select({
            "//tests/fuzz:fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        args = ["-runs=0", "tests/fuzz/corpus/" + corpus],
        data = native.glob(["corpus/" + corpus + "/**"]),
        # Links gRPC (Debian's, uninstrumented): the TSan config skips it.
        tags = ["grpc"],
    )
