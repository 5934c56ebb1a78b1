"""Bulk import of historical repair records (a pilot system's, a city's old platform's) from a file:
CSV or JSON Lines in the upload fields of docs/api.md, each record through the API's own validation
(app.services.collection.validate) and ingest (app.services.records.ingest_many), so the rules and the
idempotency by (enterprise, settlement number) are the API's: a record already uploaded comes back
`unchanged`, a changed one is a new version.

Resumable: the file is known by its SHA-256, and where its import stands (the byte offset and line
just after the last stored batch, and the counts) is committed in the same transaction as each batch.
An import stopped at any point, even killed, starts again after its last stored batch: no line twice,
none skipped. Every stored batch is one audit event.

Attributed to one enterprise (its records, as if its own software had uploaded them), or to a
migration source whose lines each name their enterprise in `enterprise_uscc`; the versions' source is
`import`.
"""

import csv
import hashlib
import io
import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.db.models import Enterprise, ImportProgress
from app.domain.clock import now
from app.domain.errors import FieldError
from app.runtime import Runtime
from app.security.auditlog import Event
from app.services.collection import validate
from app.services.outbox import sink_for
from app.services.records import BatchItem, ingest_many

Format = Literal["csv", "jsonl"]
SOURCE = "import"  # record_version.source of imported versions
USCC_FIELD = "enterprise_uscc"  # a migration source's lines: whose record it is
JSON_CELLS = ("items", "parts")  # CSV: the lists as JSON in one cell each


class ImportFileError(Exception):
    """The file cannot be imported at all (unknown format, no header, unknown enterprise)."""


@dataclass
class Line:
    number: int  # first physical line of the record, 1-based
    end: int  # byte offset just after it
    record: dict[str, Any] | None
    error: str | None = None


@dataclass
class Summary:
    digest: str
    lines: int = 0  # records read, this run
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    resumed_at: int = 0  # the line this run started after (0: from the start)
    already_done: bool = False
    totals: dict[str, int] = field(default_factory=dict)  # over every run of this file


def file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def detect_format(path: Path) -> Format:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise ImportFileError(f"{path.name}: 文件类型应为 .csv 或 .jsonl（unknown format）")


def _numbered(f: BinaryIO, start_line: int) -> Iterator[tuple[int, int, str]]:
    """(line number, byte offset after it, text) of each physical line from the current position."""
    offset, number = f.tell(), start_line
    for raw in iter(f.readline, b""):
        offset += len(raw)
        number += 1
        yield number, offset, raw.decode("utf-8-sig" if number == 1 else "utf-8")


def unflatten(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row (columns named by the fields' paths: `vehicle.vin`, `totals.total`; `items` and
    `parts` as JSON arrays) as the nested record the API takes; an empty cell is an absent field."""
    out: dict[str, Any] = {}
    for column, cell in row.items():
        if column is None or cell is None or cell == "":
            continue
        value: Any = json.loads(cell) if column in JSON_CELLS else cell
        *parents, leaf = column.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def read_lines(path: Path, fmt: Format, offset: int = 0, line: int = 0) -> Iterator[Line]:
    """The file's records from `offset` (just after line `line`), each with its line number and end."""
    with path.open("rb") as f:
        header: list[str] | None = None
        if fmt == "csv":
            first = f.readline().decode("utf-8-sig")
            header = next(csv.reader([first]), None)
            if not header:
                raise ImportFileError(f"{path.name}: 第 1 行应为表头（header row）")
            if offset == 0:
                offset, line = f.tell(), 1
        f.seek(offset)
        lines = _numbered(f, line)
        if fmt == "jsonl":
            for number, end, text in lines:
                if not text.strip():
                    continue
                try:
                    value = json.loads(text)
                except ValueError as e:
                    yield Line(number, end, None, f"不是有效的 JSON（{e}）")
                    continue
                if not isinstance(value, dict):
                    yield Line(number, end, None, "每行应为一个 JSON 对象（a JSON object per line）")
                else:
                    yield Line(number, end, value)
            return
        assert header is not None
        pos = {"number": line, "end": offset}

        def text_lines() -> Iterator[str]:
            for number, end, text in lines:
                pos["number"], pos["end"] = number, end
                yield text

        start = line
        for cells in csv.reader(text_lines()):
            number, end, start = start + 1, pos["end"], pos["number"]  # a quoted cell may span lines
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                yield Line(number, end, None, f"应有 {len(header)} 列，实有 {len(cells)} 列")
                continue
            try:
                yield Line(number, end, unflatten(dict(zip(header, cells, strict=True))))
            except ValueError as e:
                yield Line(number, end, None, f"items / parts 列应为 JSON 数组（{e}）")


def reasons(errors: list[FieldError]) -> str:
    return "；".join(f"{e.field}: {e.code} {e.message}" for e in errors)


@dataclass
class Attribution:
    """To whom the file's records belong: one enterprise, or the enterprise each line names."""

    enterprise_uscc: str | None = None
    source: str | None = None

    @property
    def label(self) -> str:
        return f"enterprise:{self.enterprise_uscc}" if self.enterprise_uscc else f"source:{self.source}"


Progress = Callable[[int, int], None]  # (bytes done, records done) after each stored batch


def run(
    rt: Runtime,
    path: Path,
    who: Attribution,
    actor: str,
    rejects: Path,
    batch_size: int = 500,
    fmt: Format | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Import `path` (or the rest of it, when an earlier run stopped): see the module docstring."""
    fmt = fmt or detect_format(path)
    digest = file_digest(path)
    summary = Summary(digest)
    fixed_enterprise: int | None = None
    with rt.db.transaction() as s:
        if who.enterprise_uscc:
            fixed_enterprise = s.scalar(select(Enterprise.id).where(Enterprise.uscc == who.enterprise_uscc))
            if fixed_enterprise is None:
                raise ImportFileError(f"企业 {who.enterprise_uscc} 未在本平台登记（unknown enterprise）")
        state = s.get(ImportProgress, digest)
        if state is None:
            s.add(ImportProgress(digest=digest, filename=path.name[:200], actor=actor[:60],
                                 attributed_to=who.label[:60], byte_offset=0, line=0))  # fmt: skip
            offset, line = 0, 0
        else:
            offset, line = state.byte_offset, state.line
            summary.already_done = state.finished_at is not None
    summary.resumed_at = line
    _keep_rejects_before(rejects, line)
    if summary.already_done:
        summary.totals = _totals(rt, digest)
        return summary
    usccs: dict[str, int | None] = {}
    sink = sink_for(rt.exchange)

    def check(chunk: list[Line]) -> tuple[list[tuple[int, str]], dict[int, list[BatchItem]]]:
        """The lines' rejects (line, reason) and valid records by enterprise: no write."""
        bad: list[tuple[int, str]] = []
        by_enterprise: dict[int, list[dict[str, Any]]] = {}
        numbers: dict[int, list[int]] = {}
        unknown = sorted({
            u for ln in chunk if ln.record and (u := ln.record.get(USCC_FIELD)) and u not in usccs
        }) if fixed_enterprise is None else []  # fmt: skip
        if unknown:
            with rt.db.transaction() as s:
                query = select(Enterprise.uscc, Enterprise.id).where(Enterprise.uscc.in_(unknown))
                found = dict(s.execute(query).tuples().all())
            usccs.update({u: found.get(u) for u in unknown})
        for ln in chunk:
            if ln.record is None:
                bad.append((ln.number, ln.error or ""))
                continue
            rec = dict(ln.record)
            uscc = rec.pop(USCC_FIELD, None)
            ent = fixed_enterprise if fixed_enterprise is not None else usccs.get(uscc) if uscc else None
            if fixed_enterprise is not None and uscc not in (None, "", who.enterprise_uscc):
                bad.append((ln.number, f"{USCC_FIELD}: 与导入指定的企业 {who.enterprise_uscc} 不一致"))
            elif ent is None:
                what = f"{uscc} 未在本平台登记" if uscc else "缺少（迁移来源的每行须注明所属企业）"
                bad.append((ln.number, f"{USCC_FIELD}: {what}"))
            else:
                by_enterprise.setdefault(ent, []).append(rec)
                numbers.setdefault(ent, []).append(ln.number)
        valid: dict[int, list[BatchItem]] = {}
        for ent, recs in by_enterprise.items():
            outcomes, valid[ent], _ = validate(recs)
            bad += [(numbers[ent][o.index], reasons(o.errors)) for o in outcomes if o.errors]
        return sorted(bad), valid

    def store(chunk: list[Line], checked: tuple[list[tuple[int, str]], dict[int, list[BatchItem]]],
              last: bool) -> None:  # fmt: skip
        bad, valid = checked
        # the rejects first, made durable: a run killed before its commit drops them again on resume
        _append_rejects(rejects, bad)
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        end = chunk[-1].end if chunk else stored["offset"]
        last_line = chunk[-1].number if chunk else stored["line"]

        def work(s: Session) -> None:
            for k in counts:
                counts[k] = 0
            for ent in sorted(valid):
                if valid[ent]:
                    for r in ingest_many(s, rt.codes, ent, valid[ent], SOURCE, sink).values():
                        counts[r.outcome] += 1
            values = {"byte_offset": end, "line": last_line, "updated_at": now()}
            s.execute(
                pg_insert(ImportProgress)
                .values(digest=digest, filename=path.name[:200], actor=actor[:60],
                        attributed_to=who.label[:60], **values)
                .on_conflict_do_update(index_elements=["digest"], set_={
                    **values,
                    "created": ImportProgress.created + counts["created"],
                    "updated": ImportProgress.updated + counts["updated"],
                    "unchanged": ImportProgress.unchanged + counts["unchanged"],
                    "rejected": ImportProgress.rejected + len(bad),
                    "finished_at": now() if last else None,
                })
            )  # fmt: skip
            rt.audit.record(s, Event("operator", actor[:60], "records.import", f"import:{digest[:16]}",
                                     "success" if not bad else "failure", {
                "file": path.name, "attributed_to": who.label, "lines": [chunk[0].number, last_line] if chunk
                else [], **counts, "rejected": len(bad), "finished": last,
            }))  # fmt: skip

        rt.db.run(work)
        stored.update(offset=end, line=last_line)
        summary.lines += len(chunk)
        summary.created += counts["created"]
        summary.updated += counts["updated"]
        summary.unchanged += counts["unchanged"]
        summary.rejected += len(bad)
        if progress is not None:
            progress(end, summary.lines)

    stored = {"offset": offset, "line": line}
    # Reading and checking the next batch (Python, holding the GIL) overlaps storing this one (mostly
    # waiting on PostgreSQL), as a COPY client's work overlaps the server's.
    ahead: queue.Queue[Any] = queue.Queue(maxsize=2)

    def produce() -> None:
        try:
            lines = read_lines(path, fmt, offset, line)
            following = next(lines, None)
            while True:
                chunk: list[Line] = []
                while following is not None and len(chunk) < batch_size:
                    chunk.append(following)
                    following = next(lines, None)
                ahead.put((chunk, check(chunk), following is None))
                if following is None:
                    return
        except BaseException as e:  # handed to the storing thread, which raises it
            ahead.put(e)

    reader = threading.Thread(target=produce, name="import-reader", daemon=True)
    reader.start()
    while True:
        item = ahead.get()
        if isinstance(item, BaseException):
            raise item
        chunk, checked, last = item
        store(chunk, checked, last)
        if last:
            break
    reader.join()
    summary.totals = _totals(rt, digest)
    return summary


def _totals(rt: Runtime, digest: str) -> dict[str, int]:
    with rt.db.transaction() as s:
        p = s.get(ImportProgress, digest)
        assert p is not None
        return {"created": p.created, "updated": p.updated, "unchanged": p.unchanged, "rejected": p.rejected,
                "lines": p.line}  # fmt: skip


def _keep_rejects_before(rejects: Path, line: int) -> None:
    """Rejects of lines after `line` are of a batch that was never stored: it is read again."""
    if not rejects.exists():
        rejects.write_text("行号\t原因\n", encoding="utf-8")
        return
    kept = []
    for text in rejects.read_text(encoding="utf-8").splitlines(keepends=True):
        head = text.split("\t", 1)[0]
        if not head.isdigit() or int(head) <= line:
            kept.append(text)
    rejects.write_text("".join(kept), encoding="utf-8")


def _append_rejects(rejects: Path, bad: list[tuple[int, str]]) -> None:
    if not bad:
        return
    buf = io.StringIO()
    for number, reason in bad:
        buf.write(f"{number}\t{reason.replace(chr(9), ' ').replace(chr(10), ' ')}\n")
    with rejects.open("a", encoding="utf-8") as f:
        f.write(buf.getvalue())
        f.flush()
