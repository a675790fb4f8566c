"""State machine versions, aliases and tags over HTTP, driven by real boto3 (and the real AWS
CLI) against a real server (issue 13)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.http.sfn_server import Server
from tests.http.test_aws_cli import AWS, aws, out
from tests.http.test_boto3 import ROLE, code, create, wait_status

JSON = Any


def result_pass(value: JSON) -> JSON:
    return {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": value, "End": True}}}


def run(sfn: Any, arn: str, **fields: JSON) -> dict[str, JSON]:
    started = sfn.start_execution(stateMachineArn=arn, **fields)
    return wait_status(sfn, started["executionArn"])


def test_publishing_numbers_each_revision_once(sfn: Any) -> None:
    made = sfn.create_state_machine(
        name="Versioned", definition=json.dumps(result_pass(1)), roleArn=ROLE, publish=True
    )
    arn = made["stateMachineArn"]
    assert made["stateMachineVersionArn"] == f"{arn}:1"
    # The same definition again is no new revision: publishing it returns version 1.
    same = sfn.update_state_machine(
        stateMachineArn=arn, definition=json.dumps(result_pass(1)), publish=True
    )
    assert same["stateMachineVersionArn"] == f"{arn}:1"
    assert "revisionId" not in same
    changed = sfn.update_state_machine(
        stateMachineArn=arn,
        definition=json.dumps(result_pass(2)),
        publish=True,
        versionDescription="second",
    )
    assert changed["stateMachineVersionArn"] == f"{arn}:2"
    assert sfn.publish_state_machine_version(stateMachineArn=arn)["stateMachineVersionArn"] == (
        f"{arn}:2"
    )
    with pytest.raises(sfn.exceptions.ConflictException):
        sfn.publish_state_machine_version(stateMachineArn=arn, revisionId="not-the-current-one")
    published = sfn.publish_state_machine_version(
        stateMachineArn=arn, revisionId=changed["revisionId"]
    )
    assert published["stateMachineVersionArn"] == f"{arn}:2"

    first = sfn.describe_state_machine(stateMachineArn=f"{arn}:1")
    assert first["stateMachineArn"] == f"{arn}:1"
    assert json.loads(first["definition"]) == result_pass(1)
    second = sfn.describe_state_machine(stateMachineArn=f"{arn}:2")
    assert json.loads(second["definition"]) == result_pass(2)
    assert second["description"] == "second"
    assert second["revisionId"] == changed["revisionId"]

    listed = sfn.list_state_machine_versions(stateMachineArn=arn, maxResults=1)
    assert [v["stateMachineVersionArn"] for v in listed["stateMachineVersions"]] == [f"{arn}:2"]
    rest = sfn.list_state_machine_versions(stateMachineArn=arn, nextToken=listed["nextToken"])
    assert [v["stateMachineVersionArn"] for v in rest["stateMachineVersions"]] == [f"{arn}:1"]

    # A deleted version's number is not given again.
    sfn.delete_state_machine_version(stateMachineVersionArn=f"{arn}:2")
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.describe_state_machine(stateMachineArn=f"{arn}:2")
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.start_execution(stateMachineArn=f"{arn}:2")
    again = sfn.publish_state_machine_version(stateMachineArn=arn)
    assert again["stateMachineVersionArn"] == f"{arn}:3"


def test_a_never_updated_machine_publishes_revision_initial(sfn: Any) -> None:
    arn = create(sfn, "Initial", result_pass(0))
    published = sfn.publish_state_machine_version(stateMachineArn=arn, revisionId="INITIAL")
    assert published["stateMachineVersionArn"] == f"{arn}:1"
    sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(result_pass(9)))
    with pytest.raises(sfn.exceptions.ConflictException):
        sfn.publish_state_machine_version(stateMachineArn=arn, revisionId="INITIAL")


def test_an_execution_of_a_version_runs_that_version(sfn: Any) -> None:
    made = sfn.create_state_machine(
        name="Pinned", definition=json.dumps(result_pass("v1")), roleArn=ROLE, publish=True
    )
    arn, version = made["stateMachineArn"], made["stateMachineVersionArn"]
    sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(result_pass("v2")))
    done = run(sfn, version, name="of-v1")
    assert json.loads(done["output"]) == "v1"
    assert done["stateMachineArn"] == arn
    assert done["stateMachineVersionArn"] == version
    assert "stateMachineAliasArn" not in done
    assert done["executionArn"] == f"{arn.replace(':stateMachine:', ':execution:')}:of-v1"
    latest = run(sfn, arn)
    assert json.loads(latest["output"]) == "v2"
    assert "stateMachineVersionArn" not in latest
    events = sfn.get_execution_history(executionArn=done["executionArn"])["events"]
    started = events[0]["executionStartedEventDetails"]
    assert started["stateMachineVersionArn"] == version
    listed = sfn.list_executions(stateMachineArn=version)["executions"]
    assert [e["executionArn"] for e in listed] == [done["executionArn"]]
    assert listed[0]["stateMachineVersionArn"] == version
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 2
    for_execution = sfn.describe_state_machine_for_execution(executionArn=done["executionArn"])
    assert json.loads(for_execution["definition"]) == result_pass("v1")


def test_an_alias_routes_by_weight(sfn: Any) -> None:
    made = sfn.create_state_machine(
        name="Routed", definition=json.dumps(result_pass("one")), roleArn=ROLE, publish=True
    )
    arn, v1 = made["stateMachineArn"], made["stateMachineVersionArn"]
    v2 = sfn.update_state_machine(
        stateMachineArn=arn, definition=json.dumps(result_pass("two")), publish=True
    )["stateMachineVersionArn"]
    alias = sfn.create_state_machine_alias(
        name="live", routingConfiguration=[{"stateMachineVersionArn": v1, "weight": 100}]
    )
    alias_arn = alias["stateMachineAliasArn"]
    assert alias_arn == f"{arn}:live"
    # The same alias again is the same alias; other settings under its name conflict.
    same = sfn.create_state_machine_alias(
        name="live", routingConfiguration=[{"stateMachineVersionArn": v1, "weight": 100}]
    )
    assert same["stateMachineAliasArn"] == alias_arn
    with pytest.raises(sfn.exceptions.ConflictException):
        sfn.create_state_machine_alias(
            name="live", routingConfiguration=[{"stateMachineVersionArn": v2, "weight": 100}]
        )
    done = run(sfn, alias_arn)
    assert json.loads(done["output"]) == "one"
    assert (done["stateMachineAliasArn"], done["stateMachineVersionArn"]) == (alias_arn, v1)

    sfn.update_state_machine_alias(
        stateMachineAliasArn=alias_arn,
        routingConfiguration=[
            {"stateMachineVersionArn": v1, "weight": 50},
            {"stateMachineVersionArn": v2, "weight": 50},
        ],
        description="half and half",
    )
    described = sfn.describe_state_machine_alias(stateMachineAliasArn=alias_arn)
    assert described["description"] == "half and half"
    assert [r["weight"] for r in described["routingConfiguration"]] == [50, 50]
    assert described["updateDate"] >= described["creationDate"]
    outputs = [json.loads(run(sfn, alias_arn)["output"]) for _ in range(120)]
    # Binomial(120, 0.5) outside [30, 90] has a probability below 1e-7.
    assert 30 <= outputs.count("one") <= 90
    assert outputs.count("one") + outputs.count("two") == 120
    through = sfn.list_executions(stateMachineArn=alias_arn, maxResults=1000)["executions"]
    assert len(through) == 121
    assert {e["stateMachineAliasArn"] for e in through} == {alias_arn}

    # A version an alias routes to cannot be deleted.
    with pytest.raises(sfn.exceptions.ConflictException):
        sfn.delete_state_machine_version(stateMachineVersionArn=v2)
    listed = sfn.list_state_machine_aliases(stateMachineArn=arn)["stateMachineAliases"]
    assert [a["stateMachineAliasArn"] for a in listed] == [alias_arn]
    sfn.delete_state_machine_alias(stateMachineAliasArn=alias_arn)
    with pytest.raises(sfn.exceptions.ResourceNotFound):
        sfn.describe_state_machine_alias(stateMachineAliasArn=alias_arn)
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.start_execution(stateMachineArn=alias_arn)
    sfn.delete_state_machine_version(stateMachineVersionArn=v2)


def test_an_alias_refuses_bad_routing(sfn: Any) -> None:
    one = sfn.create_state_machine(
        name="RouteA", definition=json.dumps(result_pass(1)), roleArn=ROLE, publish=True
    )["stateMachineVersionArn"]
    other = sfn.create_state_machine(
        name="RouteB", definition=json.dumps(result_pass(1)), roleArn=ROLE, publish=True
    )["stateMachineVersionArn"]
    bad = [
        ([{"stateMachineVersionArn": one, "weight": 60}], "ValidationException"),
        (
            [
                {"stateMachineVersionArn": one, "weight": 50},
                {"stateMachineVersionArn": other, "weight": 50},
            ],
            "ValidationException",
        ),
        (
            [
                {"stateMachineVersionArn": one, "weight": 50},
                {"stateMachineVersionArn": one, "weight": 50},
            ],
            "ValidationException",
        ),
        ([{"stateMachineVersionArn": one[:-1] + "7", "weight": 100}], "ResourceNotFound"),
    ]
    for routing, error in bad:
        with pytest.raises(ClientError) as excinfo:
            sfn.create_state_machine_alias(name="bad", routingConfiguration=routing)
        assert code(excinfo) == error, routing
    for name in ("7", "a:b", "a b", "x" * 81):  # a number would read as a version
        with pytest.raises(ClientError) as excinfo:
            sfn.create_state_machine_alias(
                name=name, routingConfiguration=[{"stateMachineVersionArn": one, "weight": 100}]
            )
        assert code(excinfo) in ("InvalidName", "ValidationException"), name
    with pytest.raises(ClientError) as excinfo:  # three versions: the model's bound
        sfn.create_state_machine_alias(
            name="bad", routingConfiguration=[{"stateMachineVersionArn": one, "weight": 1}] * 3
        )
    assert code(excinfo) == "ValidationException"


def test_tags_of_state_machines_and_activities(sfn: Any) -> None:
    arn = sfn.create_state_machine(
        name="Tagged",
        definition=json.dumps(result_pass(1)),
        roleArn=ROLE,
        tags=[{"key": "team", "value": "billing"}],
        publish=True,
    )["stateMachineArn"]
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"key": "team", "value": "billing"}
    ]
    sfn.tag_resource(
        resourceArn=arn, tags=[{"key": "team", "value": "ops"}, {"key": "env", "value": ""}]
    )
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"key": "env", "value": ""},
        {"key": "team", "value": "ops"},
    ]
    sfn.untag_resource(resourceArn=arn, tagKeys=["env", "absent"])
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "team", "value": "ops"}]
    with pytest.raises(sfn.exceptions.ResourceNotFound):  # AWS tags no version
        sfn.tag_resource(resourceArn=f"{arn}:1", tags=[{"key": "k", "value": "v"}])
    with pytest.raises(sfn.exceptions.ResourceNotFound):
        sfn.list_tags_for_resource(resourceArn=arn.replace("Tagged", "Untold"))
    with pytest.raises(sfn.exceptions.TooManyTags):
        sfn.tag_resource(resourceArn=arn, tags=[{"key": f"k{i}", "value": "v"} for i in range(50)])
    with pytest.raises(sfn.exceptions.ValidationException):
        sfn.tag_resource(resourceArn=arn, tags=[{"key": "no<script>", "value": "v"}])

    activity = sfn.create_activity(name="TaggedWork", tags=[{"key": "a", "value": "b"}])
    activity_arn = activity["activityArn"]
    assert sfn.list_tags_for_resource(resourceArn=activity_arn)["tags"] == [
        {"key": "a", "value": "b"}
    ]
    sfn.delete_activity(activityArn=activity_arn)
    with pytest.raises(sfn.exceptions.ResourceNotFound):
        sfn.list_tags_for_resource(resourceArn=activity_arn)

    # Deleting the machine deletes its tags and versions: made again, it starts afresh.
    sfn.delete_state_machine(stateMachineArn=arn)
    again = sfn.create_state_machine(
        name="Tagged", definition=json.dumps(result_pass(2)), roleArn=ROLE, publish=True
    )
    assert again["stateMachineVersionArn"] == f"{arn}:1"
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == []


@pytest.mark.skipif(not AWS.exists(), reason=f"the AWS CLI is not installed ({AWS})")
def test_the_aws_cli_publishes_routes_and_tags(server: Server) -> None:
    text = json.dumps(result_pass("cli"))
    created = out(
        aws(server, "create-state-machine", "--name", "CliVersions", "--definition", text,
            "--role-arn", ROLE, "--publish", "--tags", "key=owner,value=cli")
    )  # fmt: skip
    version = created["stateMachineVersionArn"]
    alias = out(
        aws(server, "create-state-machine-alias", "--name", "prod", "--routing-configuration",
            f"stateMachineVersionArn={version},weight=100")
    )  # fmt: skip
    started = out(
        aws(server, "start-execution", "--state-machine-arn", alias["stateMachineAliasArn"])
    )
    for _ in range(200):
        described = out(
            aws(server, "describe-execution", "--execution-arn", started["executionArn"])
        )
        if described["status"] != "RUNNING":
            break
    assert described["status"] == "SUCCEEDED"
    assert described["stateMachineVersionArn"] == version
    tags = out(aws(server, "list-tags-for-resource", "--resource-arn", created["stateMachineArn"]))
    assert tags["tags"] == [{"key": "owner", "value": "cli"}]
    versions = out(
        aws(server, "list-state-machine-versions", "--state-machine-arn",
            created["stateMachineArn"])
    )  # fmt: skip
    assert [v["stateMachineVersionArn"] for v in versions["stateMachineVersions"]] == [version]
