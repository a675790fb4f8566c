"""The SQLite store's schema: the versioned migrations :class:`~runtime.store.sqlite.SqliteStore`
applies on open (tracked in ``PRAGMA user_version``), and what each version adds.

Schema (version 1):

* ``state_machines(arn PK, ...)``
* ``executions(execution_arn PK, ..., last_seq)`` indexed for listing by state machine, by
  status and by ``start_date``; ``last_seq`` is the optimistic-concurrency check.
* ``events(execution_id, seq, type, timestamp, payload)`` with ``PRIMARY KEY (execution_id,
  seq)``, where ``execution_id`` is the integer ``executions.id``; ``payload`` is
  ``encode_event`` (MessagePack); ``type``/``timestamp`` are copies for operators' SQL.
  Measured on a group commit of 1,000 executions x 1 event: keying events by the integer id
  rather than the ARN text writes 2-4x faster as the table grows (a ~10x smaller key index, so
  far fewer dirty pages per commit), and a rowid table beat ``WITHOUT ROWID`` 2x on writes.
* ``timers(execution_arn, timer_id, fire_at)`` keyed by ``(execution_arn, timer_id)`` and
  indexed on ``fire_at``.

Version 2 adds ``requests(id, kind, payload, created, status, result)``: operators' requests
(``statemill start|stop|send-task-success|send-task-failure``) recorded durably for a runtime
to apply (``PENDING`` -> ``DONE`` or ``FAILED``, ``result`` is JSON text). SQLite only: it is
not part of the ``EventStore`` protocol.

Version 3 adds ``activities(arn PK, name, creation_date)`` (CreateActivity survives a restart)
and ``heartbeats(execution_arn, frame, at)`` keyed by ``(execution_arn, frame)``: the last
SendTaskHeartbeat of a waiting token Task, so HeartbeatSeconds counts across a restart.

Version 4 adds ``events.first_seq``: a row holds all the events of one append, ``first_seq``
to ``seq``, their ``encode_event`` bytes back to back (``encode_events``); a row written before
holds one event (``first_seq`` NULL). ``benchmarks chain``: 21 rows per execution made index
lookups and B-tree inserts most of a commit's cost.

Version 5 adds ``schedules(arn PK, group_name, name, schedule, creation_date, fire_mark,
missed_fires)`` (issue 14, the ``ScheduleStore`` port): ``schedule`` is the Schedule's JSON;
``fire_mark`` is moved only by a compare-and-set ``UPDATE ... WHERE fire_mark IS ?``.

Version 6 adds ``state_machine_revisions(arn, revision_id, ...)``, keyed by both, holding the
state machine row as stored with each revision (the ``StateMachineRevisions`` port; the rows of
the machines stored before are copied in), and ``executions.revision_id``: the revision an
execution started on, whose definition it runs to its end (``''`` for those stored before).

Version 7 adds ``executions.map_run_arn`` (issue 14: the Map Run an execution is a child of,
NULL for the others and for those stored before) with the partial index
``executions_by_map_run(map_run_arn, start_date, execution_arn, status) WHERE map_run_arn IS
NOT NULL`` (listing one Map Run's children is a range scan of it, counting them by status reads
the index only; executions that are no child cost it nothing), and ``map_runs(map_run_arn PK,
execution_arn, state_machine_arn, start_date)`` indexed by parent execution (the
``MapRunStore`` port).

Version 8 (issue 13: versions, aliases and tags, the ``VersionStore`` and ``TagStore`` ports)
adds:

* ``state_machine_versions(state_machine_arn, version, revision_id, description,
  creation_date, deleted)`` keyed by ``(state_machine_arn, version)``. A deleted version keeps
  its row (``deleted = 1``), a tombstone, so that ``max(version)`` is the highest number the
  machine ever had and no number is given twice; ``delete_state_machine`` deletes every row
  (a machine created again starts at 1). The partial unique index
  ``state_machine_versions_by_revision(state_machine_arn, revision_id) WHERE deleted = 0``
  makes "one live version per revision" the database's rule, and serves the look-up.
* ``state_machine_aliases(state_machine_arn, name, description, routing, creation_date,
  update_date)`` keyed by ``(state_machine_arn, name)``; ``routing`` is JSON text,
  ``[[version, weight], ...]``.
* ``tags(resource_arn, key, value)`` keyed by ``(resource_arn, key)`` (tags of state machines
  and activities; listing one resource's tags by key is a range scan of the key).
* ``executions.state_machine_version_arn`` and ``executions.state_machine_alias_arn`` (NULL for
  executions started with the unqualified ARN and for those stored before), each with a partial
  index on ``(<column>, start_date, execution_arn) WHERE <column> IS NOT NULL``, so listing the
  executions of a version or an alias is a range scan that costs the other executions nothing.

Append only: a released migration's SQL never changes (files in the field were built by it).
Imports ``store.base`` only.
"""

from __future__ import annotations

from typing import Final

from runtime.store.base import STATE_MACHINE_COLUMNS

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "check_not_newer"]

#: ``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1``. Append only; never edit a
#: released migration (files in the field were built by it).
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE state_machines (
            arn TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            definition TEXT NOT NULL,
            type TEXT NOT NULL,
            creation_date REAL NOT NULL,
            revision_id TEXT NOT NULL DEFAULT ''
        )""",
        """CREATE TABLE executions (
            id INTEGER PRIMARY KEY,
            execution_arn TEXT NOT NULL UNIQUE,
            state_machine_arn TEXT NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            start_date REAL NOT NULL,
            input TEXT NOT NULL,
            stop_date REAL,
            output TEXT,
            error TEXT,
            cause TEXT,
            machine_type TEXT NOT NULL DEFAULT 'STANDARD',
            redrive_count INTEGER NOT NULL DEFAULT 0,
            parent_execution_arn TEXT,
            last_seq INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE INDEX executions_by_machine
            ON executions (state_machine_arn, start_date, execution_arn)""",
        "CREATE INDEX executions_by_status ON executions (status, start_date, execution_arn)",
        "CREATE INDEX executions_by_start ON executions (start_date, execution_arn)",
        """CREATE TABLE events (
            execution_id INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            timestamp REAL NOT NULL,
            payload BLOB NOT NULL,
            PRIMARY KEY (execution_id, seq)
        )""",
        """CREATE TABLE timers (
            execution_arn TEXT NOT NULL,
            timer_id TEXT NOT NULL,
            fire_at REAL NOT NULL,
            PRIMARY KEY (execution_arn, timer_id)
        )""",
        "CREATE INDEX timers_by_fire_at ON timers (fire_at, execution_arn, timer_id)",
    ),
    (
        # Version 2 (issue 5): operators' requests (start, stop, task-token answers) written
        # by the command line and applied by whichever runtime runs on the file.
        """CREATE TABLE requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            created REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'PENDING',
            result TEXT
        )""",
        "CREATE INDEX requests_pending ON requests (status, id)",
    ),
    (
        # Version 3 (issue 5): activities and task-token heartbeats survive a restart.
        """CREATE TABLE activities (
            arn TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            creation_date REAL NOT NULL
        )""",
        """CREATE TABLE heartbeats (
            execution_arn TEXT NOT NULL,
            frame TEXT NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (execution_arn, frame)
        )""",
    ),
    (
        # Version 4 (issue 4): a row holds the events of one append (see the module text);
        # ``type``/``timestamp`` are then the row's last event's.
        "ALTER TABLE events ADD COLUMN first_seq INTEGER",
    ),
    (
        # Version 5 (issue 14): EventBridge Scheduler's schedules and their fire marks.
        """CREATE TABLE schedules (
            arn TEXT PRIMARY KEY,
            group_name TEXT NOT NULL,
            name TEXT NOT NULL,
            schedule TEXT NOT NULL,
            creation_date REAL NOT NULL,
            fire_mark REAL,
            missed_fires INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX schedules_by_group ON schedules (group_name, name)",
    ),
    (
        # Version 6 (issue 13): a running execution keeps the definition it started with
        # across UpdateStateMachine and restarts; its revision's row is kept here.
        """CREATE TABLE state_machine_revisions (
            arn TEXT NOT NULL,
            revision_id TEXT NOT NULL,
            name TEXT NOT NULL,
            definition TEXT NOT NULL,
            type TEXT NOT NULL,
            creation_date REAL NOT NULL,
            PRIMARY KEY (arn, revision_id)
        )""",
        f"INSERT INTO state_machine_revisions ({STATE_MACHINE_COLUMNS}) "
        f"SELECT {STATE_MACHINE_COLUMNS} FROM state_machines",
        "ALTER TABLE executions ADD COLUMN revision_id TEXT NOT NULL DEFAULT ''",
    ),
    (
        # Version 7 (issue 14): each iteration of a distributed Map is a child execution of a
        # Map Run; the children are listed and counted by Map Run.
        "ALTER TABLE executions ADD COLUMN map_run_arn TEXT",
        # ``status`` last makes the index covering for counting the children by status
        # (measured: 3x faster than looking up each row, 200,000 children).
        """CREATE INDEX executions_by_map_run
            ON executions (map_run_arn, start_date, execution_arn, status)
            WHERE map_run_arn IS NOT NULL""",
        """CREATE TABLE map_runs (
            map_run_arn TEXT PRIMARY KEY,
            execution_arn TEXT NOT NULL,
            state_machine_arn TEXT NOT NULL,
            start_date REAL NOT NULL
        )""",
        "CREATE INDEX map_runs_by_execution ON map_runs (execution_arn, start_date, map_run_arn)",
    ),
    (
        # Version 8 (issue 13): state machine versions (deleted ones are tombstones: their
        # numbers stay taken), aliases, tags, and the version or alias an execution was
        # started with.
        """CREATE TABLE state_machine_versions (
            state_machine_arn TEXT NOT NULL,
            version INTEGER NOT NULL,
            revision_id TEXT NOT NULL,
            description TEXT,
            creation_date REAL NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (state_machine_arn, version)
        )""",
        """CREATE UNIQUE INDEX state_machine_versions_by_revision
            ON state_machine_versions (state_machine_arn, revision_id) WHERE deleted = 0""",
        """CREATE TABLE state_machine_aliases (
            state_machine_arn TEXT NOT NULL,
            name TEXT NOT NULL,
            description TEXT,
            routing TEXT NOT NULL,
            creation_date REAL NOT NULL,
            update_date REAL NOT NULL,
            PRIMARY KEY (state_machine_arn, name)
        )""",
        """CREATE TABLE tags (
            resource_arn TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (resource_arn, key)
        )""",
        "ALTER TABLE executions ADD COLUMN state_machine_version_arn TEXT",
        "ALTER TABLE executions ADD COLUMN state_machine_alias_arn TEXT",
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


def check_not_newer(version: int) -> None:
    """Refuse a file whose ``PRAGMA user_version`` is newer than this code's schema.

    Raises:
        RuntimeError: ``version`` is above :data:`SCHEMA_VERSION` (the message says to upgrade).
    """
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema version {version} is newer than this Statemill understands "
            f"({SCHEMA_VERSION}); upgrade Statemill"
        )
