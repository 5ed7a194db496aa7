"""Targets that exist only where the CUDA toolkit does (@system's HAS_CUDA)."""

load("@system//:cuda.bzl", "HAS_CUDA")

def cuda_only_cc_library(**kwargs):
    """A cc_library that needs the CUDA headers; absent without the toolkit."""
    if HAS_CUDA:
        native.cc_library(**kwargs)

def cuda_only_cc_test(**kwargs):
    """A cc_test that needs the CUDA headers; absent without the toolkit."""
    if HAS_CUDA:
        native.cc_test(**kwargs)
