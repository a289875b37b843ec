"""The journal of automated rotation, as the owner writes and reads it over a
:class:`~vault.owner.writer.Writer`: each entry committed in a transaction of its own
(so that it is on disk before the exchange call it announces), signed with the root
key, and verified whenever it is read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from vault.db import queries
from vault.errors import Conflict, IntegrityError
from vault.format import journal
from vault.format.model import to_epoch, utc_now
from vault.format.schema import JournalRow
from vault.owner.writer import Writer


class Journal:
    """The rotation journal of one vault."""

    def __init__(self, writer: Writer) -> None:
        self._writer = writer

    def _signed(self, row: JournalRow) -> JournalRow:
        return journal.signed(self._writer.identity, self._writer.vault_id, row)

    def _verified(self, values: Sequence[Any]) -> JournalRow:
        return journal.verify(
            self._writer.verify_public, self._writer.vault_id, JournalRow(*values)
        )

    def begin(
        self,
        credential: str,
        rotation_id: str,
        step: str,
        *,
        api_key: str | None = None,
        detail: str | None = None,
    ) -> JournalRow:
        """Record the intent of ``step`` and commit it; the entry as stored.

        :raises StoreError: when the database fails (then nothing may be called).
        """
        now = to_epoch(utc_now())
        row = JournalRow(
            0,
            credential,
            rotation_id,
            step,
            journal.INTENT,
            api_key,
            detail,
            None,
            0,
            now,
            now,
            b"",
        )
        with self._writer.write() as transaction:
            return self._insert(transaction.execute, row)

    def _insert(self, execute: queries.Execute, row: JournalRow) -> JournalRow:
        # Numbered first, then signed with its number (the signature covers the id),
        # in the caller's transaction: the row is never committed unsigned.
        values = queries.journal_values(row)
        del values["id"]
        (new_id,) = execute(queries.INSERT_JOURNAL_SQL, values)[0]
        signed = self._signed(row._replace(id=int(new_id)))
        execute(queries.UPDATE_JOURNAL_SQL, queries.journal_values(signed))
        return signed

    def settle(
        self,
        row: JournalRow,
        state: str,
        *,
        api_key: str | None = None,
        detail: str | None = None,
    ) -> JournalRow:
        """Record what came of ``row``'s step (``state``: one of
        :data:`vault.format.journal.SETTLED`, or ``intent`` again for one more attempt)
        and commit it; ``api_key`` and ``detail`` replace the stored ones when given.

        :raises Conflict: when the entry was settled meanwhile (another run).
        :raises IntegrityError: when the stored entry does not verify.
        """
        with self._writer.write() as transaction:
            execute = transaction.execute
            stored = self._stored(execute, row.id)
            if stored.state != journal.INTENT:
                raise Conflict(
                    f"rotation {row.rotation_id} of {row.credential}: step settled by another run"
                )
            new = stored._replace(
                state=state,
                api_key=stored.api_key if api_key is None else api_key,
                detail=stored.detail if detail is None else detail,
                attempts=stored.attempts + (1 if state == journal.INTENT else 0),
                updated_at=to_epoch(utc_now()),
            )
            signed = self._signed(new)
            execute(queries.UPDATE_JOURNAL_SQL, queries.journal_values(signed))
            return signed

    def _stored(self, execute: queries.Execute, entry_id: int) -> JournalRow:
        for values in execute(queries.JOURNAL_SQL, {}):
            if values[0] == entry_id:
                return self._verified(values)
        raise IntegrityError("damaged vault: a rotation journal entry is missing")

    def entries(self, *, open_only: bool = False) -> list[JournalRow]:
        """Every entry (or the unsettled ones), oldest first, each verified.

        :raises IntegrityError: when an entry does not verify.
        """
        sql = queries.OPEN_JOURNAL_SQL if open_only else queries.JOURNAL_SQL
        with self._writer.read() as transaction:
            return [self._verified(v) for v in transaction.execute(sql, {})]

    def claim(
        self, credential: str, rotation_id: str, holder: str, alive: Callable[[str], bool]
    ) -> JournalRow | None:
        """Claim ``credential`` for this run (``holder``), in one write transaction: the
        new lease entry, or None when a live process holds it. A lease whose holder is
        no longer ``alive`` is settled ``abandoned`` in the same transaction.

        :raises IntegrityError: when an entry does not verify.
        """
        now = to_epoch(utc_now())
        with self._writer.write() as transaction:
            execute = transaction.execute
            for values in execute(queries.OPEN_JOURNAL_SQL, {}):
                row = self._verified(values)
                if row.step != journal.LEASE or row.credential != credential:
                    continue
                if row.holder is not None and alive(row.holder):
                    return None
                self._abandon(execute, row, now)
            lease = JournalRow(
                0,
                credential,
                rotation_id,
                journal.LEASE,
                journal.INTENT,
                None,
                None,
                holder,
                0,
                now,
                now,
                b"",
            )
            return self._insert(execute, lease)

    def release_dead(self, alive: Callable[[str], bool]) -> int:
        """Settle ``abandoned`` every lease whose holder is no longer ``alive``, in one
        write transaction; how many. A run killed while it held a credential that is
        not due again for a while would otherwise leave its lease open until then.

        :raises IntegrityError: when an entry does not verify.
        """
        now = to_epoch(utc_now())
        released = 0
        with self._writer.write() as transaction:
            execute = transaction.execute
            for values in execute(queries.OPEN_JOURNAL_SQL, {}):
                row = self._verified(values)
                if row.step == journal.LEASE and (row.holder is None or not alive(row.holder)):
                    self._abandon(execute, row, now)
                    released += 1
        return released

    def _abandon(self, execute: queries.Execute, lease: JournalRow, now: int) -> None:
        dead = lease._replace(state=journal.ABANDONED, detail="its process ended", updated_at=now)
        execute(queries.UPDATE_JOURNAL_SQL, queries.journal_values(self._signed(dead)))
