"""C++ code generation for protobuf + gRPC with Debian's protoc.

gpumig_cc_grpc_library(name, srcs, deps) runs protoc and grpc_cpp_plugin
(from protobuf-compiler / protobuf-compiler-grpc) over `srcs`, which must live
under `<package>/` with their import path below it (e.g. proto/gpumig/v1/x.proto
imported as "gpumig/v1/x.proto"), and wraps the generated code in one
cc_library. Consumers include "gpumig/v1/x.pb.h" / "gpumig/v1/x.grpc.pb.h".
"""

def gpumig_cc_grpc_library(name, srcs, deps = [], visibility = None):
    pkg = native.package_name()
    outs = []
    hdrs = []
    for src in srcs:
        if not src.endswith(".proto"):
            fail("%s is not a .proto file" % src)
        base = src[:-len(".proto")]
        hdrs += [base + ".pb.h", base + ".grpc.pb.h"]
        outs += [base + ".pb.h", base + ".pb.cc", base + ".grpc.pb.h", base + ".grpc.pb.cc"]

    native.genrule(
        name = name + "_codegen",
        srcs = srcs,
        outs = outs,
        cmd = " ".join([
            "protoc",
            "--proto_path=%s" % pkg,
            "--proto_path=/usr/include",
            "--cpp_out=$(GENDIR)/%s" % pkg,
            "--grpc_out=$(GENDIR)/%s" % pkg,
            "--plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin)",
            "$(SRCS)",
        ]),
        message = "Generating C++ protobuf/gRPC code for %s" % name,
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = hdrs,
        includes = ["."],
        deps = deps + [
            "//third_party/system:grpc",
            "//third_party/system:protobuf",
        ],
        visibility = visibility,
    )
