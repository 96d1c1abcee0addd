"""The sidecar gRPC protocol (``sidecar.proto``) and its generated Python stubs."""

from sidecars.protocol import sidecar_pb2

# "sibyl.sidecar.v1.Sidecar": the name clients, health checks and servers use
SERVICE_NAME = sidecar_pb2.DESCRIPTOR.services_by_name["Sidecar"].full_name
