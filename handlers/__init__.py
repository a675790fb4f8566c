"""Ready-made Task handlers and the handlers of the shipped examples.

Each module builds its own :class:`runtime.HandlerRegistry` (a plain object, no global registry)
and decorates its async functions with ``@registry.handler("Name")``; a runtime takes it as
``Runtime(handlers=module.registry)`` and the CLI as ``statemill run ... --handlers MODULE``.

- :mod:`handlers.orders`: the online order process (check stock, create the order, invoice,
  payment, confirmation, or tell the customer an item is out of stock).
- :mod:`handlers.billing`: the monthly billing run (open the month's run, price, invoice, send),
  with a transient e-mail failure for Retry and a permanent one for Catch, and the generated
  customer files its ItemReader reads.
- :mod:`handlers.http`: the HTTP Task, ``arn:aws:states:::http:invoke`` (AWS's arguments,
  response shape and ``States.Http.*`` errors); ``http_registry(allowed_networks=...)`` builds one
  that may call more than public addresses.
- :mod:`handlers.approvals`: the manual-release example's ``.waitForTaskToken`` approval request.

This package imports only the public ``runtime`` API.
"""
