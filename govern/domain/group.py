"""Group commit: one transaction, and one durable commit, for the device requests of a
tenant that wait in this process at the same moment (GROUP_COMMIT; docs/operations.md).

Each request authenticates and is judged by the door on its own, as on the pipelined path
(govern.domain.single: its token and its subject's context read after it arrived, in a
transaction of its own that only read), and hands its judged batch (a single.Work) to the
process's GroupCommit. The first request of a tenant to arrive while no group of that tenant
is being stored leads: it takes every request of the tenant then waiting, and on its own
connection runs, in one transaction,

1. the tenant scope and each request's store statement (the same statement and parameters
   as alone), pipelined: one round trip;
2. each request's diagnostics statement and COMMIT, pipelined: one round trip.

Only after COMMIT has returned is each request answered, each with its own result. Requests
that arrive meanwhile queue; when the group is done the first of them leads the next group.
Groups are per tenant, so the transaction's tenant scope (row-level security) is each
request's own.

Failures: when the transaction fails and the server has rolled it back (an error in any
statement, a deadlock, a dropped partition, or a connection lost before COMMIT was sent),
nothing of the group was committed and every request of it runs again on its own, in its own
transaction (govern.domain.single), so one bad request cannot fail the others. Only when the
connection is lost once step 2 was sent (COMMIT may or may not have run) is every request
of the group answered 503 (nothing acknowledged; a retried ping is a duplicate if it was
stored). No request is acknowledged before its commit.
"""

from __future__ import annotations

import logging
import threading
import uuid

import psycopg
from prometheus_client import Counter as MetricCounter

from govern.db import tenant_scope_sql
from govern.domain.single import DeviceRequest, Work, db_error
from govern.sql import single as sql

log = logging.getLogger(__name__)

MAX_GROUP = 256  # requests in one transaction (a process has far fewer threads)

GROUPS = MetricCounter("govern_ingest_groups_total",
                       "Group-commit transactions, by how they ended", ["outcome"])

DONE, ALONE, FAILED = "done", "alone", "failed"


class GroupCommit:
    """A process's batcher (one per app; gunicorn workers are processes, each has its own).

    `commit(work, request)` returns True once the request's batch is committed in a group
    (work.result says what became of each ping), False when its group was rolled back and the
    request must run alone, and raises (as SQLAlchemy's DBAPIError: 503) when the outcome
    of the group's COMMIT is unknown."""

    def __init__(self):
        self.changed = threading.Condition()
        self._queues: dict[uuid.UUID, list[Work]] = {}
        self._leading: set[uuid.UUID] = set()
        # counts, for tests and the operator: groups taken, committed, rolled back
        self.taken = self.committed = self.rolled_back = 0
        self.largest = 0

    # ---- what tests and metrics observe --------------------------------------------------

    def queued(self, tenant_id: uuid.UUID) -> int:
        """Requests of the tenant waiting for a group (not those being stored)."""
        with self.changed:
            return len(self._queues.get(tenant_id, ()))

    def wait_until(self, predicate, timeout: float = 30.0) -> bool:
        """Wait (on the batcher's condition, woken by each change) until predicate(self)."""
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self), timeout)

    # ---- a request ---------------------------------------------------------------------

    def commit(self, work: Work, request: DeviceRequest) -> bool:
        tenant_id = work.tenant_id
        with self.changed:
            self._queues.setdefault(tenant_id, []).append(work)
            lead = tenant_id not in self._leading
            if lead:
                self._leading.add(tenant_id)
            self.changed.notify_all()
        if not lead:
            work.wake.wait()
            lead = work.lead  # woken to lead the next group (which holds this request)
        if lead:
            self._lead(tenant_id, request)
        if work.state == FAILED:
            raise work.error
        return work.state == DONE

    def _lead(self, tenant_id: uuid.UUID, request: DeviceRequest) -> None:
        with self.changed:
            queue = self._queues[tenant_id]
            group, self._queues[tenant_id] = queue[:MAX_GROUP], queue[MAX_GROUP:]
            self.taken += 1
            self.largest = max(self.largest, len(group))
            self.changed.notify_all()
        try:
            self._store(tenant_id, group, request)
        except Exception:
            log.exception("group commit failed")
            request.rollback()
        finally:
            for work in group:
                if work.state is None:  # not committed: alone, from the start
                    work.state = ALONE
                work.wake.set()
            with self.changed:
                queue = self._queues[tenant_id]
                if queue:
                    queue[0].lead = True
                    queue[0].wake.set()
                else:
                    del self._queues[tenant_id]
                    self._leading.discard(tenant_id)
                self.changed.notify_all()

    def _store(self, tenant_id: uuid.UUID, group: list[Work], request: DeviceRequest) -> None:
        """The group's transaction on the leader's connection; each Work's state set."""
        conn = request.conn
        ordered = sorted(group, key=lambda w: w.order)
        committing = False
        try:
            with conn.pipeline():
                conn.execute(tenant_scope_sql(tenant_id))
                cursors = []
                for work in ordered:
                    if work.store is not None:
                        cur = conn.cursor()
                        cur.execute(*work.store)
                        cursors.append((work, cur))
                for work, cur in cursors:
                    work.stored(cur.fetchone())
                # from here a lost connection may have taken COMMIT with it (the pipeline
                # sends as it goes)
                committing = True
                # the devices' diagnostics rows in one order, as the store rows above
                for work in sorted(ordered, key=lambda w: str(w.device_id)):
                    conn.execute(sql.RECORD, work.record_params())
                conn.commit()
        except psycopg.Error as exc:
            broken = conn.closed or conn.broken
            if committing and broken:
                # COMMIT was sent and no answer came: it may have committed
                error = request._db_error(exc, "COMMIT")
                for work in group:
                    work.state = FAILED
                    work.error = error if work is group[0] else db_error(
                        request.engine, exc, "COMMIT", True)
                GROUPS.labels("unknown").inc()
                log.warning("group commit of %d requests: connection lost at COMMIT: %s",
                            len(group), str(exc).splitlines()[0] if str(exc) else exc)
                return
            if broken:
                request._db_error(exc, "group")  # the connection leaves the pool
            else:
                request.rollback()
            with self.changed:
                self.rolled_back += 1
            GROUPS.labels("rolled_back").inc()
            log.info("group commit of %d requests rolled back, each runs alone: %s",
                     len(group), str(exc).splitlines()[0] if str(exc) else exc)
            return  # every state stays None: alone
        for work in group:
            work.state = DONE
        with self.changed:
            self.committed += 1
        GROUPS.labels("committed").inc()
