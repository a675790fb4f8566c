"""The Step Functions API over HTTP (issue 13), so boto3 and the AWS CLI work unchanged.

:func:`create_app` returns the ASGI application for a running :class:`~runtime.Runtime`;
:func:`serve` runs a runtime and the API in one process (``statemill serve``). Modules:

* :mod:`runtime.http.protocol`: AWS's JSON 1.0 wire format, errors, pagination tokens, ARNs.
* :mod:`runtime.http.shapes`: the request shapes of botocore's model and their checks.
* :mod:`runtime.http.actions`: the 37 actions over the public Runtime API (with
  ``actions_map_runs`` and ``actions_versions``).
* :mod:`runtime.http.sigv4`: AWS Signature Version 4 verification of a request.
* :mod:`runtime.http.app`: the Starlette application.
* :mod:`runtime.http.serve`: uvicorn (uvloop), loopback unless given access keys or
  explicitly opted out.

Client set-up: ``boto3.client("stepfunctions", endpoint_url="http://127.0.0.1:8083",
region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
config=botocore.config.Config(inject_host_prefix=False))``: without ``inject_host_prefix=False``
botocore sends ``StartSyncExecution`` to ``sync-127.0.0.1``, which does not resolve. Given
access keys (``create_app(runtime, credentials=...)``, ``statemill serve --credentials-file``),
every request must be SigV4-signed with one of them (:mod:`runtime.http.sigv4`); without, none
is authenticated and the server stays on loopback.

Nothing here imports engine internals: only the public ``runtime`` API, ``runtime.errors`` and
``runtime.tools``.
"""

from __future__ import annotations

from runtime.http.app import create_app
from runtime.http.serve import serve

__all__ = ["create_app", "serve"]
