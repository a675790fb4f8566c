"""The PostgreSQL store's schema: its versioned migrations (``MIGRATIONS``), one tuple of
statements per version, applied in order by ``PostgresStore.migrate``.

Version 7 (issue 13, the ``VersionStore`` and ``TagStore`` ports) is SQLite's version 8:
``state_machine_versions`` (a deleted version is a tombstone, ``deleted``, so its number stays
taken; a partial unique index allows one live version per revision), ``state_machine_aliases``
(``routing`` as JSON text), ``tags``, and ``executions.state_machine_version_arn`` /
``state_machine_alias_arn`` with their partial indexes. None of them is partitioned data (as
``state_machines``): their writes are not fenced.

Imports the partition count (the first migration records it in ``settings``) and the state
machine columns (version 5 copies the machines into their revisions).
"""

from __future__ import annotations

from typing import Final

from runtime.store.base import STATE_MACHINE_COLUMNS
from runtime.store.partitions import PARTITIONS

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

#: ``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1``. Append only; never edit a
#: released migration (databases in the field were built by it).
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE settings (
            name text COLLATE "C" PRIMARY KEY,
            value text NOT NULL
        )""",
        f"INSERT INTO settings (name, value) VALUES ('partitions', '{PARTITIONS}')",
        """CREATE TABLE state_machines (
            arn text COLLATE "C" PRIMARY KEY,
            name text NOT NULL,
            definition text NOT NULL,
            type text NOT NULL,
            creation_date double precision NOT NULL,
            revision_id text NOT NULL DEFAULT ''
        )""",
        """CREATE TABLE executions (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            execution_arn text COLLATE "C" NOT NULL UNIQUE,
            partition integer NOT NULL,
            state_machine_arn text COLLATE "C" NOT NULL,
            name text NOT NULL,
            status text COLLATE "C" NOT NULL,
            start_date double precision NOT NULL,
            input text NOT NULL,
            stop_date double precision,
            output text,
            error text,
            cause text,
            machine_type text NOT NULL DEFAULT 'STANDARD',
            redrive_count integer NOT NULL DEFAULT 0,
            parent_execution_arn text COLLATE "C",
            last_seq bigint NOT NULL DEFAULT 0
        )""",
        """CREATE INDEX executions_by_machine
            ON executions (state_machine_arn, start_date, execution_arn)""",
        "CREATE INDEX executions_by_status ON executions (status, start_date, execution_arn)",
        "CREATE INDEX executions_by_start ON executions (start_date, execution_arn)",
        """CREATE TABLE events (
            execution_id bigint NOT NULL,
            seq bigint NOT NULL,
            first_seq bigint NOT NULL,
            type text NOT NULL,
            timestamp double precision NOT NULL,
            payload bytea NOT NULL,
            PRIMARY KEY (execution_id, seq)
        )""",
        """CREATE TABLE timers (
            execution_arn text COLLATE "C" NOT NULL,
            timer_id text COLLATE "C" NOT NULL,
            fire_at double precision NOT NULL,
            partition integer NOT NULL,
            PRIMARY KEY (execution_arn, timer_id)
        )""",
        "CREATE INDEX timers_by_fire_at ON timers (fire_at, execution_arn, timer_id)",
        # Operators' requests (statemill start|stop|send-task-*), as SQLite's version 2.
        """CREATE TABLE requests (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            kind text NOT NULL,
            payload text NOT NULL,
            created double precision NOT NULL,
            status text NOT NULL DEFAULT 'PENDING',
            result text
        )""",
        "CREATE INDEX requests_pending ON requests (id) WHERE status = 'PENDING'",
        """CREATE TABLE activities (
            arn text COLLATE "C" PRIMARY KEY,
            name text NOT NULL,
            creation_date double precision NOT NULL
        )""",
        """CREATE TABLE heartbeats (
            execution_arn text COLLATE "C" NOT NULL,
            frame text COLLATE "C" NOT NULL,
            at double precision NOT NULL,
            PRIMARY KEY (execution_arn, frame)
        )""",
    ),
    (
        # Version 2 (issue 14): EventBridge Scheduler's schedules and their fire marks.
        """CREATE TABLE schedules (
            arn text COLLATE "C" PRIMARY KEY,
            group_name text COLLATE "C" NOT NULL,
            name text COLLATE "C" NOT NULL,
            schedule text NOT NULL,
            creation_date double precision NOT NULL,
            fire_mark double precision,
            missed_fires bigint NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX schedules_by_group ON schedules (group_name, name)",
    ),
    (
        # Version 3 (issue 12): members, partition leases (the epoch is the fencing token),
        # and the partition a request is for (applied by that partition's owner). Times are
        # the database server's clock, so members on machines with skewed clocks agree.
        """CREATE TABLE members (
            member_id text COLLATE "C" PRIMARY KEY,
            host text NOT NULL,
            pid integer NOT NULL,
            started timestamptz NOT NULL DEFAULT now(),
            expires timestamptz NOT NULL
        )""",
        """CREATE TABLE leases (
            partition integer PRIMARY KEY,
            owner text COLLATE "C",
            epoch bigint NOT NULL DEFAULT 0,
            expires timestamptz NOT NULL DEFAULT '-infinity'
        )""",
        f"INSERT INTO leases (partition) SELECT generate_series(0, {PARTITIONS - 1})",
        "ALTER TABLE requests ADD COLUMN partition integer NOT NULL DEFAULT 0",
        "CREATE INDEX requests_pending_by_partition ON requests (partition, id) "
        "WHERE status = 'PENDING'",
        "CREATE INDEX executions_open_by_partition ON executions (partition) "
        "WHERE status = 'RUNNING'",
    ),
    (
        # Version 4 (issue 12): activity tasks waiting for a worker, published by the owner of
        # their execution so that a worker polling any member gets them. A worker's member
        # claims one for a while (``claimed_until``) and deletes it once the owner has handed
        # it out; a claim whose member died runs out and the row is claimable again.
        """CREATE TABLE activity_tasks (
            task_token text COLLATE "C" PRIMARY KEY,
            activity_arn text COLLATE "C" NOT NULL,
            execution_arn text COLLATE "C" NOT NULL,
            seq bigint GENERATED ALWAYS AS IDENTITY,
            claimed_until timestamptz NOT NULL DEFAULT '-infinity'
        )""",
        "CREATE INDEX activity_tasks_by_activity ON activity_tasks (activity_arn, seq)",
    ),
    (
        # Version 5 (issue 13): a running execution keeps the definition it started with
        # across UpdateStateMachine and restarts: the row of each revision is kept, and an
        # execution names the revision it started on ('' for those stored before).
        """CREATE TABLE state_machine_revisions (
            arn text COLLATE "C" NOT NULL,
            revision_id text COLLATE "C" NOT NULL,
            name text NOT NULL,
            definition text NOT NULL,
            type text NOT NULL,
            creation_date double precision NOT NULL,
            PRIMARY KEY (arn, revision_id)
        )""",
        f"INSERT INTO state_machine_revisions ({STATE_MACHINE_COLUMNS}) "
        f"SELECT {STATE_MACHINE_COLUMNS} FROM state_machines",
        "ALTER TABLE executions ADD COLUMN revision_id text NOT NULL DEFAULT ''",
    ),
    (
        # Version 6 (issue 14): each iteration of a distributed Map is a child execution of a
        # Map Run (NULL: no child); the partial index serves listing and counting one Map
        # Run's children and costs the other executions nothing. INCLUDE (status): counting
        # the children by status can be an index-only scan.
        'ALTER TABLE executions ADD COLUMN map_run_arn text COLLATE "C"',
        """CREATE INDEX executions_by_map_run
            ON executions (map_run_arn, start_date, execution_arn) INCLUDE (status)
            WHERE map_run_arn IS NOT NULL""",
        """CREATE TABLE map_runs (
            map_run_arn text COLLATE "C" PRIMARY KEY,
            execution_arn text COLLATE "C" NOT NULL,
            state_machine_arn text COLLATE "C" NOT NULL,
            start_date double precision NOT NULL
        )""",
        "CREATE INDEX map_runs_by_execution ON map_runs (execution_arn, start_date, map_run_arn)",
    ),
    (
        # Version 7 (issue 13): state machine versions (deleted ones are tombstones: their
        # numbers stay taken), aliases, tags, and the version or alias an execution was
        # started with (NULL: started with the unqualified ARN).
        """CREATE TABLE state_machine_versions (
            state_machine_arn text COLLATE "C" NOT NULL,
            version integer NOT NULL,
            revision_id text COLLATE "C" NOT NULL,
            description text,
            creation_date double precision NOT NULL,
            deleted boolean NOT NULL DEFAULT false,
            PRIMARY KEY (state_machine_arn, version)
        )""",
        """CREATE UNIQUE INDEX state_machine_versions_by_revision
            ON state_machine_versions (state_machine_arn, revision_id) WHERE NOT deleted""",
        """CREATE TABLE state_machine_aliases (
            state_machine_arn text COLLATE "C" NOT NULL,
            name text COLLATE "C" NOT NULL,
            description text,
            routing text NOT NULL,
            creation_date double precision NOT NULL,
            update_date double precision NOT NULL,
            PRIMARY KEY (state_machine_arn, name)
        )""",
        """CREATE TABLE tags (
            resource_arn text COLLATE "C" NOT NULL,
            key text COLLATE "C" NOT NULL,
            value text NOT NULL,
            PRIMARY KEY (resource_arn, key)
        )""",
        'ALTER TABLE executions ADD COLUMN state_machine_version_arn text COLLATE "C"',
        'ALTER TABLE executions ADD COLUMN state_machine_alias_arn text COLLATE "C"',
        """CREATE INDEX executions_by_version
            ON executions (state_machine_version_arn, start_date, execution_arn)
            WHERE state_machine_version_arn IS NOT NULL""",
        """CREATE INDEX executions_by_alias
            ON executions (state_machine_alias_arn, start_date, execution_arn)
            WHERE state_machine_alias_arn IS NOT NULL""",
    ),
)

#: The schema version this code writes.
SCHEMA_VERSION: Final = len(MIGRATIONS)
