"""Python protobuf + gRPC stubs with Debian's protoc and grpc_python_plugin.

gpumig_py_grpc_stubs(name, protos, proto_root, package) runs
`protoc --python_out --pyi_out` and grpc_python_plugin (protobuf-compiler,
protobuf-compiler-grpc) over `protos`, whose import paths are relative to
`proto_root` (e.g. proto/gpumig/v1/x.proto imported as "gpumig/v1/x.proto").
The outputs land under this package with the import path kept
(<pkg>/gpumig/v1/x_pb2.py, x_pb2.pyi, x_pb2_grpc.py, and an empty
__init__.py), so with <pkg> on sys.path `from gpumig.v1 import x_pb2` works
without rewriting the generated imports. Nothing generated is committed.
"""

def gpumig_py_grpc_stubs(name, protos, proto_root, import_dir, visibility = None):
    """protos: proto file basenames (without .proto) below import_dir."""
    outs = [import_dir + "/__init__.py"]
    for p in protos:
        outs += [
            import_dir + "/" + p + "_pb2.py",
            import_dir + "/" + p + "_pb2.pyi",
            import_dir + "/" + p + "_pb2_grpc.py",
        ]
    native.genrule(
        name = name,
        srcs = ["//proto:gpumig_v1_protos"],
        outs = outs,
        cmd = " && ".join([
            "protoc --proto_path=%s --python_out=$(@D) --pyi_out=$(@D) " % proto_root +
            "--grpc_out=$(@D) " +
            "--plugin=protoc-gen-grpc=$$(command -v grpc_python_plugin) $(SRCS)",
            "touch $(@D)/%s/__init__.py" % import_dir,
        ]),
        message = "Generating Python protobuf/gRPC stubs for %s" % name,
        visibility = visibility,
    )
