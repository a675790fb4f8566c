"""Task handlers: the Handler protocol, the context a handler receives, and an explicit registry.

A handler is an async callable ``(input, context) -> output`` registered under a name. A Task's
``Resource`` names it: the exact resource string, or the function NAME of a Lambda ARN
(``arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]``), or ``FunctionName`` of
``arn:aws:states:::lambda:invoke`` -- so definitions written for AWS run unchanged.

Registries are plain objects, never module-level globals: a module that provides handlers builds
a ``HandlerRegistry`` and decorates its functions with ``@registry.handler("Name")``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Final, Protocol, final

import msgspec
import structlog

JSON = Any


class TaskContext(msgspec.Struct, frozen=True, kw_only=True):
    """What a handler knows about the call it serves.

    ``idempotency_key`` is stable across re-deliveries of the same attempt (execution, state,
    attempt): handler calls are at-least-once, so a handler with side effects should use it.
    """

    execution_arn: str
    state_machine_arn: str
    state_name: str
    resource: str
    attempt: int
    idempotency_key: str
    task_token: str | None = None
    logger: Any = None
    heartbeat_fn: Callable[[], Awaitable[None]] | None = None
    sleep_fn: Callable[[float], Awaitable[None]] | None = None

    async def heartbeat(self) -> None:
        """Report progress so ``HeartbeatSeconds`` does not expire."""
        if self.heartbeat_fn is not None:
            await self.heartbeat_fn()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the runtime's clock (virtual in tests), not the wall clock."""
        if self.sleep_fn is not None:
            await self.sleep_fn(seconds)
        else:
            await asyncio.sleep(seconds)


class Handler(Protocol):
    """An async Task implementation."""

    def __call__(self, input: JSON, context: TaskContext, /) -> Awaitable[JSON]: ...


@final
class HandlerSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A registered handler and its limits."""

    name: str
    fn: Handler
    max_concurrency: int | None = None


_LAMBDA_ARN: Final = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:[^:]*:[^:]*:function:(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?$"
)


def lambda_function_name(resource: str) -> str | None:
    """The function NAME of a Lambda function ARN, or None if ``resource`` is not one."""
    match = _LAMBDA_ARN.match(resource)
    return match.group("name") if match else None


@final
class HandlerRegistry:
    """Resource name -> handler. Use ``register`` or the ``handler`` decorator."""

    def __init__(self, handlers: Mapping[str, Handler] | None = None) -> None:
        self._specs: dict[str, HandlerSpec] = {}
        for name, fn in (handlers or {}).items():
            self.register(name, fn)

    def register(self, name: str, fn: Handler, *, max_concurrency: int | None = None) -> None:
        """Register ``fn`` under ``name``; ``max_concurrency`` caps its calls in flight."""
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._specs[name] = HandlerSpec(name=name, fn=fn, max_concurrency=max_concurrency)

    def handler(
        self, name: str, *, max_concurrency: int | None = None
    ) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`register`."""

        def decorate(fn: Handler) -> Handler:
            self.register(name, fn, max_concurrency=max_concurrency)
            return fn

        return decorate

    def update(self, other: HandlerRegistry | Mapping[str, Handler]) -> None:
        """Add every handler of ``other``."""
        if isinstance(other, HandlerRegistry):
            self._specs.update(other._specs)
        else:
            for name, fn in other.items():
                self.register(name, fn)

    def resolve(self, name: str) -> HandlerSpec | None:
        """The handler for a resource or function name: exact name first, then Lambda ARN."""
        spec = self._specs.get(name)
        if spec is not None:
            return spec
        function = lambda_function_name(name)
        if function is not None:
            return self._specs.get(function)
        return None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.resolve(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)


def bound_logger(execution_arn: str, state_name: str, attempt: int) -> Any:
    """A structlog logger bound to one handler call."""
    return structlog.get_logger("statemill.handler").bind(
        execution_arn=execution_arn, state=state_name, attempt=attempt
    )
