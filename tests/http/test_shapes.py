"""The request-shape table and the action table against botocore's service model."""

from __future__ import annotations

from typing import Any

import botocore.loaders
import pytest

from runtime.http.actions import ACTIONS
from runtime.http.protocol import ApiError
from runtime.http.shapes import REQUESTS, check_request

JSON = Any
MODEL: dict[str, JSON] = botocore.loaders.create_loader().load_service_model(
    "stepfunctions", "service-2"
)


def test_the_model_is_the_2016_11_23_api() -> None:
    assert MODEL["metadata"]["apiVersion"] == "2016-11-23"
    assert MODEL["metadata"]["targetPrefix"] == "AWSStepFunctions"
    assert len(MODEL["operations"]) == 37


def test_every_action_of_the_model_has_a_shape_and_an_answer() -> None:
    assert set(REQUESTS) == set(MODEL["operations"])
    assert set(ACTIONS) == set(MODEL["operations"])


@pytest.mark.parametrize("action", sorted(MODEL["operations"]))
def test_request_members_types_and_constraints_match_the_model(action: str) -> None:
    shapes = MODEL["shapes"]
    request = shapes[MODEL["operations"][action]["input"]["shape"]]
    required = set(request.get("required", []))
    assert list(REQUESTS[action]) == list(request["members"])
    for name, member in request["members"].items():
        target = shapes[member["shape"]]
        ours = REQUESTS[action][name]
        assert ours.type == target["type"], name
        assert ours.required == (name in required), name
        assert ours.min == (None if "min" not in target else int(target["min"])), name
        assert ours.max == (None if "max" not in target else int(target["max"])), name
        assert ours.enum == (None if "enum" not in target else tuple(target["enum"])), name


def test_every_error_the_runtime_maps_to_is_in_the_model() -> None:
    from runtime.http import app

    model_errors = {name for name, shape in MODEL["shapes"].items() if shape.get("exception")}
    assert model_errors >= app._SAME_NAME


def test_check_request_wording() -> None:
    with pytest.raises(ApiError, match="Member must not be null") as missing:
        check_request("DescribeExecution", {})
    assert missing.value.code == "ValidationException"
    with pytest.raises(ApiError, match="2 validation errors detected") as two:
        check_request("CreateStateMachine", {"name": "", "definition": "{}"})
    assert two.value.code == "ValidationException"
    with pytest.raises(ApiError, match="expected type integer") as typed:
        check_request("ListStateMachines", {"maxResults": "3"})
    assert typed.value.code == "SerializationException"
    with pytest.raises(ApiError, match="expected type integer"):
        check_request("ListStateMachines", {"maxResults": True})
    with pytest.raises(ApiError, match="enum value set: \\[STANDARD, EXPRESS\\]"):
        check_request("CreateStateMachine", {"name": "a", "definition": "{}", "roleArn": "r",
                                             "type": "OTHER"})  # fmt: skip
    assert check_request("ListStateMachines", {"unknownMember": 1}) == {"unknownMember": 1}
