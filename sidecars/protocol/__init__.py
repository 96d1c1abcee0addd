"""The sidecar gRPC protocol (``sidecar.proto``) and its generated Python stubs."""
