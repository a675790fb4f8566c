"""The version, alias and tag actions of the Step Functions API (issue 13), over the
``Runtime``'s verbs (:mod:`runtime.api_versions`, :mod:`runtime.api_tags`).

:data:`ACTIONS` maps each action name to its coroutine, as :data:`runtime.http.actions.ACTIONS`
does (which takes these in): PublishStateMachineVersion, ListStateMachineVersions,
DeleteStateMachineVersion, Create/Describe/Update/Delete/ListStateMachineAlias(es),
TagResource, UntagResource and ListTagsForResource. :func:`version_body` is DescribeStateMachine
of a version's ARN. Lists page by ``nextToken``/``maxResults`` like the others.

Imports the public ``runtime`` API and this package.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from runtime.http.protocol import ApiError, check_arn, list_items, page_of, tags_of

if TYPE_CHECKING:
    from runtime.http.actions import Service
    from runtime.store.base import StateMachineRecord
    from runtime.store.versions import AliasRecord, VersionRecord

__all__ = ["ACTIONS", "version_body"]

JSON = Any
Body = dict[str, JSON]
Action = Callable[["Service", Body], Awaitable[Body]]
ACTIONS: Final[dict[str, Action]] = {}


def _action(name: str) -> Callable[[Action], Action]:
    def register(fn: Action) -> Action:
        ACTIONS[name] = fn
        return fn

    return register


def _page(name: str, items: list[JSON], body: Body, key: str) -> Body:
    page, token = page_of(name, items, body)
    out: Body = {key: page}
    if token is not None:
        out["nextToken"] = token
    return out


def _routing(body: Body) -> list[tuple[str, int]] | None:
    routing = body.get("routingConfiguration")
    if routing is None:
        return None
    fields = {"stateMachineVersionArn": str, "weight": int}
    pairs = []
    for item in list_items(routing, "routingConfiguration", fields, tuple(fields)):
        check_arn(item["stateMachineVersionArn"], "stateMachine")
        pairs.append((item["stateMachineVersionArn"], item["weight"]))
    return pairs


def version_body(service: Service, version: VersionRecord, record: StateMachineRecord) -> Body:
    """DescribeStateMachine of a version's ARN: the state machine as the version holds it."""
    out: Body = {
        "stateMachineArn": version.arn,
        "name": record.name,
        "status": "ACTIVE",
        "definition": record.definition,
        "roleArn": service.role_arn,
        "type": record.type,
        "creationDate": version.creation_date,
        "loggingConfiguration": {"level": "OFF", "includeExecutionData": False},
        "tracingConfiguration": {"enabled": False},
        "revisionId": version.revision_id,
    }
    if version.description is not None:
        out["description"] = version.description
    return out


def _alias_body(alias: AliasRecord) -> Body:
    out: Body = {"stateMachineAliasArn": alias.arn, "name": alias.name}
    if alias.description is not None:
        out["description"] = alias.description
    out["routingConfiguration"] = [
        {"stateMachineVersionArn": f"{alias.state_machine_arn}:{number}", "weight": weight}
        for number, weight in alias.routing
    ]
    out["creationDate"] = alias.creation_date
    out["updateDate"] = alias.update_date
    return out


# -- versions -------------------------------------------------------------------------------------


@_action("PublishStateMachineVersion")
async def publish_state_machine_version(service: Service, body: Body) -> Body:
    arn = body["stateMachineArn"]
    check_arn(arn, "stateMachine")
    version = await service.runtime.publish_state_machine_version(
        arn, revision_id=body.get("revisionId"), description=body.get("description")
    )
    return {"creationDate": version.creation_date, "stateMachineVersionArn": version.arn}


@_action("ListStateMachineVersions")
async def list_state_machine_versions(service: Service, body: Body) -> Body:
    arn = body["stateMachineArn"]
    check_arn(arn, "stateMachine")
    versions = await service.runtime.list_state_machine_versions(arn)
    items = [{"stateMachineVersionArn": v.arn, "creationDate": v.creation_date} for v in versions]
    return _page("ListStateMachineVersions", items, body, "stateMachineVersions")


@_action("DeleteStateMachineVersion")
async def delete_state_machine_version(service: Service, body: Body) -> Body:
    arn = body["stateMachineVersionArn"]
    check_arn(arn, "stateMachine")
    await service.runtime.delete_state_machine_version(arn)
    return {}


# -- aliases --------------------------------------------------------------------------------------


@_action("CreateStateMachineAlias")
async def create_state_machine_alias(service: Service, body: Body) -> Body:
    routing = _routing(body)
    assert routing is not None  # required by the shape
    alias = await service.runtime.create_state_machine_alias(
        body["name"], routing, description=body.get("description")
    )
    return {"stateMachineAliasArn": alias.arn, "creationDate": alias.creation_date}


@_action("DescribeStateMachineAlias")
async def describe_state_machine_alias(service: Service, body: Body) -> Body:
    arn = body["stateMachineAliasArn"]
    check_arn(arn, "stateMachine")
    return _alias_body(await service.runtime.describe_state_machine_alias(arn))


@_action("ListStateMachineAliases")
async def list_state_machine_aliases(service: Service, body: Body) -> Body:
    arn = body["stateMachineArn"]
    check_arn(arn, "stateMachine")
    aliases = await service.runtime.list_state_machine_aliases(arn)
    items = [{"stateMachineAliasArn": a.arn, "creationDate": a.creation_date} for a in aliases]
    return _page("ListStateMachineAliases", items, body, "stateMachineAliases")


@_action("UpdateStateMachineAlias")
async def update_state_machine_alias(service: Service, body: Body) -> Body:
    arn = body["stateMachineAliasArn"]
    check_arn(arn, "stateMachine")
    routing = _routing(body)
    if routing is None and body.get("description") is None:
        raise ApiError(
            "ValidationException",
            "Either the description or the RoutingConfiguration must be specified",
        )
    alias = await service.runtime.update_state_machine_alias(
        arn, routing=routing, description=body.get("description")
    )
    return {"updateDate": alias.update_date}


@_action("DeleteStateMachineAlias")
async def delete_state_machine_alias(service: Service, body: Body) -> Body:
    arn = body["stateMachineAliasArn"]
    check_arn(arn, "stateMachine")
    await service.runtime.delete_state_machine_alias(arn)
    return {}


# -- tags -----------------------------------------------------------------------------------------


@_action("TagResource")
async def tag_resource(service: Service, body: Body) -> Body:
    arn = body["resourceArn"]
    check_arn(arn, "stateMachine", "activity")
    await service.runtime.tag_resource(arn, tags_of(body["tags"]))
    return {}


@_action("UntagResource")
async def untag_resource(service: Service, body: Body) -> Body:
    arn = body["resourceArn"]
    check_arn(arn, "stateMachine", "activity")
    keys = body["tagKeys"]
    if not all(isinstance(key, str) for key in keys):
        raise ApiError("SerializationException", "'tagKeys' must be a list of strings")
    await service.runtime.untag_resource(arn, keys)
    return {}


@_action("ListTagsForResource")
async def list_tags_for_resource(service: Service, body: Body) -> Body:
    arn = body["resourceArn"]
    check_arn(arn, "stateMachine", "activity")
    tags = await service.runtime.list_tags_for_resource(arn)
    return {"tags": [{"key": key, "value": value} for key, value in tags.items()]}
