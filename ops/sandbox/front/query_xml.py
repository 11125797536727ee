"""Responses of AWS "query" protocol services (RDS) written from botocore's own service model, so
what the front answers parses exactly as AWS's answer would: element names, list members,
result wrapper and scalar formats all come from the model, none is spelled here by hand."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

import botocore.session
from botocore.model import ListShape, OperationModel, ServiceModel, Shape, StructureShape

_session = botocore.session.get_session()


def service_model(name: str) -> ServiceModel:
    return _session.get_service_model(name)


def _scalar(shape: Shape, value: Any) -> str:
    if shape.type_name == "boolean":
        return "true" if value else "false"
    if shape.type_name == "timestamp" and isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return escape(str(value))


def _element(name: str, shape: Shape, value: Any) -> str:
    if isinstance(shape, StructureShape):
        inner = "".join(
            _element(member.serialization.get("name", key), member, value[key])
            for key, member in shape.members.items()
            if isinstance(value, dict) and value.get(key) is not None
        )
    elif isinstance(shape, ListShape):
        item = shape.member.serialization.get("name", "member")
        inner = "".join(_element(item, shape.member, entry) for entry in value)
    else:
        inner = _scalar(shape, value)
    return f"<{name}>{inner}</{name}>"


def response(model: ServiceModel, operation: str, result: dict[str, Any]) -> bytes:
    op: OperationModel = model.operation_model(operation)
    output = op.output_shape
    body = ""
    if output is not None:
        wrapper = output.serialization.get("resultWrapper", f"{operation}Result")
        body = _element(wrapper, output, result)
    namespace = model.metadata.get("xmlNamespace", "")
    return (
        f'<{operation}Response xmlns="{namespace}">{body}'
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        f"</{operation}Response>"
    ).encode()


def error(code: str, message: str, *, sender: bool = True) -> bytes:
    kind = "Sender" if sender else "Receiver"
    return (
        f"<ErrorResponse><Error><Type>{kind}</Type><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()
