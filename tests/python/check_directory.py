"""An independent client for a running directory: Python's grpcio, no generated code.

Everything it knows about the API comes from server reflection, the way a polyglot
caller would discover it. It checks health, then plays a vendor's backend: signs a widget
token with PyJWT and HS256 and imports the user through ImportUserFromWidgetToken.

Usage: check_directory.py ADDRESS TOKEN WORKSPACE
"""

import sys
import time
import uuid

import grpc
import jwt
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

SERVICE = "roster.directory.v1.DirectoryService"


class Directory:
    """Calls DirectoryService methods by name with JSON-shaped dicts."""

    def __init__(self, channel, token):
        self.channel = channel
        self.metadata = [("authorization", f"Bearer {token}")]
        self.pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        self.service = self.pool.FindServiceByName(SERVICE)

    def call(self, method_name, request):
        method = self.service.FindMethodByName(method_name)
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        rpc = self.channel.unary_unary(
            f"/{SERVICE}/{method_name}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        message = json_format.ParseDict(request, request_class())
        response = rpc(message, metadata=self.metadata, timeout=10)
        return json_format.MessageToDict(response, preserving_proto_field_name=True)


def expect(condition, what):
    if not condition:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


def main():
    address, token, workspace = sys.argv[1:4]
    channel = grpc.insecure_channel(address)

    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)
    expect(health.status == health_pb2.HealthCheckResponse.SERVING, "health reports SERVING for the directory")

    directory = Directory(channel, token)
    expect(directory.service.FindMethodByName("ImportUsers") is not None, "reflection describes DirectoryService")

    try:
        directory.call("GetUser", {"workspace_id": workspace, "user_id": "not-a-uuid"})
        expect(False, "a malformed user id is rejected")
    except grpc.RpcError as error:
        expect(error.code() == grpc.StatusCode.INVALID_ARGUMENT, "a malformed user id gets INVALID_ARGUMENT")

    secret = directory.call("RotateWidgetSecret", {"workspace_id": workspace})["secret"]
    email = f"widget-{uuid.uuid4().hex[:8]}@example.com"
    claims = {
        "userId": email,
        "userEmail": email,
        "userName": "Widget Visitor",
        "customerId": "py001",
        "customerName": "Python Industries",
        "iat": int(time.time()),
        "exp": int(time.time()) + 300,
    }
    widget_token = jwt.encode(claims, secret, algorithm="HS256")
    imported = directory.call("ImportUserFromWidgetToken", {"workspace_id": workspace, "token": widget_token})
    expect(imported["outcome"] == "UPSERT_OUTCOME_CREATED", "a PyJWT-signed widget token creates the user")
    expect(imported["user"]["customer_id"] == "py001", "the widget token's customer is attached")

    again = directory.call("ImportUserFromWidgetToken", {"workspace_id": workspace, "token": widget_token})
    expect(again["outcome"] == "UPSERT_OUTCOME_UNCHANGED", "importing the same token again changes nothing")

    forged = jwt.encode(claims, "a-different-secret-of-the-same-length-0123", algorithm="HS256")
    try:
        directory.call("ImportUserFromWidgetToken", {"workspace_id": workspace, "token": forged})
        expect(False, "a token signed with the wrong secret is rejected")
    except grpc.RpcError as error:
        expect(error.code() == grpc.StatusCode.UNAUTHENTICATED, "a wrongly signed widget token gets UNAUTHENTICATED")

    found = directory.call("ListUsers", {"workspace_id": workspace, "filter": "widget-"})
    expect(any(user["email"] == email for user in found.get("users", [])), "the imported user is found by partial e-mail")


if __name__ == "__main__":
    main()
