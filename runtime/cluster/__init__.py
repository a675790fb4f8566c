"""Scale-out on PostgreSQL: runtime processes as members holding leases on partitions.

``plan`` (how many partitions each member holds), ``leases`` (the SQL of the ``members`` and
``leases`` tables, and the fence) and ``member`` (the rounds, and the guard every write of
executions passes) make it up; ``runtime.api_cluster`` connects a ``Runtime`` to it.
"""
