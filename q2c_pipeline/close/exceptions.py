"""The exception workflow: what is open, for which entity and period, and the decisions on it.

An exception is a row of ``marts.fct_exceptions`` (one quarantined record and rule, with its
legal entity, period, customer and record in words). Its state is its latest decision in
``ledger.decisions`` (``waived``, ``resolved``, ``override_pending``) or ``open``. A record held
only because another is (``held_by_upstream``, same correlation id) follows its root: it is
settled once every root it shares a correlation with is settled.

A period lock is blocked by every exception of that entity (or of no entity: ``UNASSIGNED``,
which could belong to any) dated in that period or earlier, or with no date at all, that is
neither waived nor resolved (an override waits for the run that applies it).
"""

from __future__ import annotations

import hashlib
import json

import duckdb
import pandas as pd

from q2c_pipeline.close.decisions import (
    SETTLING,
    DecisionRefused,
    Roles,
    exception_states,
    pending_overrides,
    record_decision,
)
from q2c_pipeline.sources.wire import FIELD_PROBLEMS
from q2c_pipeline.warehouse import table_exists

EXCEPTION_COLUMNS = ["exception_id", "legal_entity", "period", "effective_date", "owner",
                     "source_system", "source_table", "record_id", "field", "rule",
                     "customer_id", "customer_name", "record_label", "reason", "owner_action",
                     "correlation_id",
                     "payload"]
HELD = "held_by_upstream"
# Fields that decide revenue recognition: overriding one is a revenue-treatment override, which
# needs controllership (the amendment queue's --set modification_treatment=...). Canonical
# columns, the CPQ fields they are read from, and the OpportunityLineItem / Product2 / Contract
# fields an org without CPQ maps from; a product brings its catalog SSP and revenue pattern
# (ASC 606-10-32-31/33), dates the timing, a revised subscription the modification.
TREATMENT_FIELDS = {"modification_treatment", "revenue_pattern", "ssp_amount",
                    "allocation_group", "service_start", "service_end", "product_code",
                    "SBQQ__ProductCode__c", "SBQQ__Product__c", "SBQQ__StartDate__c",
                    "SBQQ__EndDate__c", "SBQQ__TerminatedDate__c",
                    "SBQQ__RevisedSubscription__c", "ProductCode", "Product2Id", "ServiceDate",
                    "StartDate", "EndDate"}
APPLIED_COLUMNS = ["decision_seq", "exception_id", "target", "record_id", "fields", "status"]


def exceptions_with_state(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every exception of the last close with its state and the decision that set it."""
    if not table_exists(conn, "marts.fct_exceptions"):
        return pd.DataFrame(columns=[*EXCEPTION_COLUMNS, "state", "decided_by", "decision"])
    frame = conn.execute(f"select {', '.join(EXCEPTION_COLUMNS)} from marts.fct_exceptions "
                         "order by legal_entity, period nulls first, owner, record_id, rule"
                         ).df()
    states = exception_states(conn).rename(columns={"actor": "decided_by",
                                                    "reason": "decision"})
    frame = frame.merge(states[["exception_id", "state", "decided_by", "decision"]],
                        on="exception_id", how="left")
    frame["state"] = frame["state"].fillna("open")
    # a held record follows its roots: the other exceptions of its correlation, and the
    # customer record holding every record of that customer
    roots = _roots_of(frame)
    for position in frame.index[(frame["rule"] == HELD) & (frame["state"] == "open")]:
        states = [frame.at[p, "state"] for p in roots.get(position, [])]
        if states and not {"open", "override_pending"} & set(states):
            frame.at[position, "state"] = sorted(states)[0]
            frame.at[position, "decision"] = "follows the record holding it"
    # the earliest period a root reaches: its own and every record it holds (undated when
    # none is dated); a held record is in its roots' scope, one without a root in its own
    periods = frame["period"].where(frame["period"].notna(), None)
    reach: dict[int, list[str]] = {p: [periods[p]] if periods[p] else [] for p in frame.index}
    held_count = dict.fromkeys(frame.index, 0)
    for position, holders in roots.items():
        for holder in holders:
            held_count[holder] += 1
            if periods[position]:
                reach[holder].append(periods[position])
    scope = {p: min(reach[p]) if reach[p] else None for p in frame.index}
    for position, holders in roots.items():
        if holders:
            dated = [scope[h] for h in holders if scope[h]]
            scope[position] = min(dated) if dated else None
    frame["scope_period"] = pd.Series(scope, dtype=object)
    frame["records_held"] = pd.Series(held_count, dtype="int64")
    frame["is_root"] = [frame.at[p, "rule"] != HELD or not roots.get(p) for p in frame.index]
    return frame.reset_index(drop=True)


def _roots_of(frame: pd.DataFrame) -> dict[int, list[int]]:
    """For each held row (by position), the positions of the root exceptions holding it."""
    is_root = frame["rule"] != HELD
    by_correlation: dict[str, list[int]] = {}
    by_customer: dict[str, list[int]] = {}
    for position in frame.index[is_root]:
        by_correlation.setdefault(frame.at[position, "correlation_id"], []).append(position)
        if frame.at[position, "source_table"] == "customers":
            by_customer.setdefault(frame.at[position, "record_id"], []).append(position)
    return {position: by_correlation.get(frame.at[position, "correlation_id"], [])
            + by_customer.get(frame.at[position, "customer_id"], [])
            for position in frame.index[~is_root]}


def in_lock_scope(frame: pd.DataFrame, legal_entity: str, period: str) -> pd.Series:
    """Exceptions a lock of (legal_entity, period) must account for: the entity's and the
    unassigned ones whose scope reaches the period or earlier, or is undated."""
    return frame["legal_entity"].isin([legal_entity, "UNASSIGNED"]) & (
        frame["scope_period"].isna() | (frame["scope_period"].astype(str) <= period))


def blocking_exceptions(conn: duckdb.DuckDBPyConnection, legal_entity: str,
                        period: str) -> pd.DataFrame:
    """The exceptions that block locking (legal_entity, period): in scope, neither waived nor
    resolved (an override waits for the run that applies it)."""
    frame = exceptions_with_state(conn)
    blocking = frame[in_lock_scope(frame, legal_entity, period)
                     & frame["state"].isin(["open", "override_pending"])]
    return blocking.reset_index(drop=True)


def find_open_exceptions(conn: duckdb.DuckDBPyConnection, legal_entity: str,
                         period: str) -> tuple[list[tuple], list[str]]:
    """The close control: the root exceptions blocking the lock, each with how many records it
    holds (a held record blocks through its root; one without a root blocks on its own)."""
    blocking = blocking_exceptions(conn, legal_entity, period)
    columns = ["exception_id", "record", "rule", "owner", "period", "state", "records_held"]
    rows = [(r.exception_id[:12], r.record_label, r.rule, r.owner,
             r.scope_period if isinstance(r.scope_period, str) else "undated", r.state,
             int(r.records_held))
            for r in blocking[blocking["is_root"]].itertuples(index=False)]
    return rows, columns


def find_exception(conn: duckdb.DuckDBPyConnection, prefix: str) -> dict:
    """The exception whose id starts with ``prefix`` (at least 6 characters, unique)."""
    prefix = prefix.strip().lower()
    if len(prefix) < 6:
        raise DecisionRefused(f"exception id {prefix!r}: give at least 6 characters of it "
                              "(q2c exceptions list shows them)")
    frame = exceptions_with_state(conn)
    hits = frame[frame["exception_id"].str.startswith(prefix)]
    if hits.empty:
        hits = _review_items(conn, prefix)
    if hits.empty:
        raise DecisionRefused(f"no open or decided exception {prefix!r} in the last close "
                              "(fixed at the source and released? q2c exceptions list)")
    if len(hits) > 1:
        raise DecisionRefused(f"exception id {prefix!r} is ambiguous ({len(hits)} match); "
                              "give more characters")
    return {k: (None if isinstance(v, float) and pd.isna(v) else v)
            for k, v in hits.iloc[0].to_dict().items()}


def field_value(text: str) -> object:
    """A corrected value as typed: JSON when it is JSON (2, null, "x"), else the text itself
    (PLAT-SEAT). NaN and Infinity are no value JSON has: refused."""
    def refuse(constant: str) -> object:
        raise DecisionRefused(f"{text!r}: {constant} is not a value (type a number, or null)")

    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError:
        return text


def _review_items(conn: duckdb.DuckDBPyConnection, prefix: str) -> pd.DataFrame:
    """Amendments awaiting review (marts.fct_work_queue) whose item id starts with ``prefix``,
    shaped as exceptions: a controller resolves one (the treatment stands) or overrides its
    treatment."""
    if not table_exists(conn, "marts.fct_work_queue"):
        return pd.DataFrame()
    return conn.execute("""
        select item_id as exception_id, legal_entity, strftime(since_date, '%Y-%m') as period,
               owner, 'salesforce' as source_system, 'contract_lines' as source_table,
               record_id, 'modification_treatment' as field, 'amendment_review' as rule,
               customer_name, record_label, detail as reason, owner_action,
               record_id as correlation_id, null as payload, decision_state as state
        from marts.fct_work_queue
        where queue = 'amendments_awaiting_review' and item_id like ? || '%'""",
                        [prefix]).df()


def source_id_of(record_id) -> str:
    """The source system's own id in a quarantine record id (``sf:800X|2`` -> ``800X``)."""
    return str(record_id or "").split("|")[0].split(":", 1)[-1]


def review_items(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every amendment awaiting review, shaped as exceptions (``state`` its decision)."""
    return _review_items(conn, "")


def _source_version(conn: duckdb.DuckDBPyConnection, exception: dict) -> dict:
    """The landed raw record version the exception is about: raw table, source id and the
    content hash of its latest version (an override corrects that version only)."""
    from q2c_pipeline.sources.registry import SALESFORCE_SOURCES, STRIPE_RESOURCES

    source_id = source_id_of(exception.get("record_id"))
    found = []
    for source in (*SALESFORCE_SOURCES, *STRIPE_RESOURCES):
        if source.system != exception.get("source_system") or not table_exists(
                conn, f"raw.{source.raw_table}"):
            continue
        found += [(source.raw_table, digest) for (digest,) in conn.execute(
            f"""select content_hash from raw.{source.raw_table} where record_id = ?
                qualify rank() over (order by source_modstamp desc nulls last,
                                     extracted_at desc) = 1""", [source_id]).fetchall()]
    if len(found) != 1:
        raise DecisionRefused(
            f"exception {exception['exception_id'][:12]}: "
            + ("the source holds several versions of this record at once; keep one at the "
               "source" if found else "its record is not a landed source record q2c can "
               "correct (a file, or a record without an id); fix it at the source"))
    return {"raw_table": found[0][0], "source_id": source_id, "content_hash": found[0][1]}


def _override_target(conn: duckdb.DuckDBPyConnection, exception: dict,
                     fields: dict[str, object]) -> dict:
    """Where an override applies: fields of the source record (its landed version, by content
    hash), or canonical columns of the record as mapped (a Stripe line embedded in its invoice,
    an ERP row), pinned to the payload the exception was raised on."""
    from q2c_pipeline.schemas import CANONICAL_TABLES

    if not fields:
        raise DecisionRefused("an override needs the corrected fields: --set FIELD=VALUE")
    original = json.loads(exception["payload"] or "{}")
    table = exception["source_table"]
    pin = (hashlib.sha256(exception["payload"].encode("utf-8")).hexdigest()
           if exception["payload"] else None)  # an amendment under review: its id
    columns = set(CANONICAL_TABLES[table][0].to_schema().columns) if table in CANONICAL_TABLES \
        else set()
    settings = {"set": dict(sorted(fields.items()))}
    if set(fields) <= set(original):
        try:
            version = _source_version(conn, exception)
        except DecisionRefused:
            if not columns:
                raise
            raise DecisionRefused(  # e.g. a Stripe line: part of its invoice, not a record
                f"{exception['record_label']} is not a record the source sends on its own "
                f"(it comes inside another), so its fields cannot be corrected one by one: "
                f"set canonical columns of {table} instead ({', '.join(sorted(columns))})"
            ) from None
        return {"target": "source", **version, **settings,
                "was": {k: original.get(k) for k in sorted(fields)}}
    if set(fields) <= columns:
        return {"target": "canonical", "source_table": table,
                "record_id": exception["record_id"], "payload_sha256": pin, **settings}
    raise DecisionRefused(
        f"cannot set {', '.join(sorted(fields))}: name fields of the source record "
        f"({', '.join(sorted(original)) or 'none'}) or canonical columns of {table} "
        f"({', '.join(sorted(columns)) or 'none'})")


def decide(conn: duckdb.DuckDBPyConnection, roles: Roles, *, action: str, prefix: str,
           actor: str, reason: str, fields: dict[str, str] | None = None) -> dict:
    """Record a waive, resolve or override of one exception, after the role check."""
    if action not in SETTLING:
        raise DecisionRefused(f"{action!r} is not an exception action ({', '.join(SETTLING)})")
    exception = find_exception(conn, prefix)
    if exception["rule"] == HELD and action == "resolve":
        raise DecisionRefused(
            f"{exception['record_label']} is only held by another record "
            f"(correlation {exception['correlation_id']}); act on that one: q2c exceptions "
            f"list --correlation {exception['correlation_id']}")
    role = roles.role_for(actor, action, exception["owner"],
                          treatment=bool(set(fields or {}) & TREATMENT_FIELDS))
    detail: dict = {"state_before": exception["state"], "record": exception["record_label"]}
    if action == "override":
        detail.update(_override_target(conn, exception, fields or {}))
    return record_decision(conn, actor=actor, role=role, action=action, reason=reason,
                           exception=exception, detail=detail)


def apply_overrides(conn: duckdb.DuckDBPyConnection,
                    raw: dict[str, list[dict]]) -> pd.DataFrame:
    """Apply every pending override to the latest landed records in ``raw`` (in place): the
    record version the override was decided on gets the corrected fields; the raw table keeps
    what the source said. An override whose record has since changed at the source has lapsed
    (the new version is validated as sent). One row per override: decision_seq, raw_table,
    source_id, fields, applied."""
    from q2c_pipeline.sources.landing import dump_canonical_json
    from q2c_pipeline.sources.registry import SALESFORCE_SOURCES, STRIPE_RESOURCES

    id_field = {s.raw_table: s.id_fields[0] for s in (*SALESFORCE_SOURCES, *STRIPE_RESOURCES)}
    landed: dict[int, str] = {}  # id(record) -> content hash as landed, before any override

    def landed_hash(record: dict) -> str:
        if id(record) not in landed:
            landed[id(record)] = hashlib.sha256(
                dump_canonical_json(record).encode("utf-8")).hexdigest()
        return landed[id(record)]

    rows, last_set = [], {}  # (table, source id, field) -> the latest decision setting it
    pending = pending_overrides(conn).sort_values("decision_seq", kind="mergesort")
    for o in pending.itertuples(index=False):
        detail = json.loads(o.detail)
        if detail.get("target", "source") != "source":
            continue
        table, source_id = detail.get("raw_table"), detail.get("source_id")
        applied = False
        for record in raw.get(table, []):
            if str(record.get(id_field.get(table, "Id"))) != str(source_id):
                continue
            # pinned to the version as landed: an earlier override of the same version (in
            # decision order, later ones win field by field) does not make a later one lapse
            if landed_hash(record) == detail.get("content_hash"):
                record.update(detail.get("set", {}))
                applied = True
        if applied:
            for field in detail.get("set", {}):
                last_set[(table, str(source_id), field)] = int(o.decision_seq)
        rows.append({"decision_seq": int(o.decision_seq), "exception_id": o.exception_id,
                     "target": f"raw.{table}", "record_id": source_id,
                     "fields": json.dumps(detail.get("set", {}), sort_keys=True),
                     "status": "applied" if applied else "lapsed: the source sent another "
                     "version of the record since; it is validated as sent"})
    for row in rows:  # a correction every field of which a later decision replaced
        if row["status"] != "applied":
            continue
        table = row["target"].removeprefix("raw.")
        later = {last_set[(table, str(row["record_id"]), f)] for f in json.loads(row["fields"])}
        if later and row["decision_seq"] not in later:
            row["status"] = f"superseded by decision {max(later)}"
    return pd.DataFrame(rows, columns=APPLIED_COLUMNS)


# The wire field a mapper problem names -> the canonical column it fills (Stripe lines and
# credit notes, invoices): a canonical override of the column settles the problem.
WIRE_COLUMNS = {"taxes": "tax_amount", "total_taxes": "tax_amount", "amount": "amount",
                "discount_amounts": "discount_amount", "discount_amount": "discount_amount",
                "subtotal": "amount", "quantity": "quantity", "quantity_decimal": "quantity",
                "period.start": "service_start", "period.end": "service_end",
                "metadata.sf_subscription_id": "contract_line_id", "due_date": "due_date",
                "status_transitions.finalized_at": "finalized_at", "amount_paid": "amount",
                "status_transitions.paid_at": "paid_at", "created": "refunded_at",
                "effective_at": "issued_at"}


def _column_of(field: str) -> str | None:
    """The canonical column a problem's wire field fills (``lines.taxes[0].amount``: tax)."""
    name = field.removeprefix("lines.")
    return WIRE_COLUMNS.get(name) or WIRE_COLUMNS.get(name.split("[")[0])


def _without_problems_of(found, columns: set[str]):
    """A row's mapper problems less those about ``columns`` (None when none is left)."""
    if not isinstance(found, list | tuple):
        return found
    kept = [p for p in found if _column_of(p[1]) not in columns]
    return kept or None


def still_held(applied: pd.DataFrame, quarantine: pd.DataFrame) -> pd.DataFrame:
    """``applied`` with each applied override whose record the run still holds saying so, and
    why (the rule and field of the record's quarantine row): applied is not the same as
    accepted."""
    if not len(applied) or not len(quarantine):
        return applied
    targets = set(applied["record_id"].astype(str))  # only the corrected records' rows
    held = quarantine.assign(source=quarantine["record_id"].map(source_id_of))
    held = held[held["record_id"].astype(str).isin(targets) | held["source"].isin(targets)]
    why = {}
    for row in held.itertuples(index=False):
        for key in (str(row.record_id), row.source):
            why.setdefault(key, f"{row.rule} ({row.field})" if row.field else row.rule)
    applied = applied.copy()
    for i, row in applied.iterrows():
        reason = why.get(str(row["record_id"]))
        if row["status"] == "applied" and reason:
            applied.loc[i, "status"] = f"applied; the record is still held: {reason}"
    return applied


def apply_canonical_overrides(conn: duckdb.DuckDBPyConnection,
                              candidates: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Apply every pending override of canonical columns to the mapped candidate rows (in
    place), each only to the row whose payload is the one the exception was raised on. One row
    per override, as ``apply_overrides``."""
    from q2c_pipeline.schemas import CANONICAL_TABLES
    from q2c_pipeline.schemas.validation import PAYLOAD_COLUMN

    rows = []
    for o in pending_overrides(conn).itertuples(index=False):
        detail = json.loads(o.detail)
        if detail.get("target") != "canonical":
            continue
        table = detail["source_table"]
        frame = candidates.get(table)
        applied = False
        if frame is not None and len(frame) and table in CANONICAL_TABLES:
            keys = CANONICAL_TABLES[table][1]
            ids = frame[keys[0]].astype(str)
            for key in keys[1:]:
                ids = ids + "|" + frame[key].astype(str)
            hit = ids == detail["record_id"]
            if detail["payload_sha256"] and PAYLOAD_COLUMN in frame:
                # hash only the rows with the record's id (not the whole table per override)
                hit &= frame[PAYLOAD_COLUMN].where(hit, "").fillna("").map(
                    lambda text: hashlib.sha256(str(text).encode("utf-8")).hexdigest()
                    if text else "") == detail["payload_sha256"]
            for column, value in detail["set"].items():
                if hit.any():
                    frame[column] = (frame[column].astype(object) if column in frame
                                     else pd.Series(None, index=frame.index, dtype=object))
                    frame.loc[hit, column] = value
            if hit.any() and FIELD_PROBLEMS in frame:
                # what the mapper could not read for a column the correction now states is
                # no longer a problem (the column itself is validated as set)
                frame.loc[hit, FIELD_PROBLEMS] = frame.loc[hit, FIELD_PROBLEMS].map(
                    lambda found: _without_problems_of(found, set(detail["set"])))
            applied = bool(hit.any())
        rows.append({"decision_seq": int(o.decision_seq), "exception_id": o.exception_id,
                     "target": f"canonical.{table}", "record_id": detail["record_id"],
                     "fields": json.dumps(detail["set"], sort_keys=True),
                     "status": "applied" if applied else "lapsed: the record has changed "
                     "since the decision; it is validated as sent"})
    return pd.DataFrame(rows, columns=APPLIED_COLUMNS)


def find_unreviewed_amendments(conn: duckdb.DuckDBPyConnection, legal_entity: str,
                               period: str) -> tuple[list[tuple], list[str]]:
    """The close control on judgement: amendments of the entity effective in the period or
    earlier that wait for review (a price decrease, a backdated or future-dated change, a
    treatment chosen by default) with no decision yet (resolved: the treatment stands;
    overridden: another one is applied at the next run)."""
    columns = ["item_id", "record", "detail", "period"]
    if not table_exists(conn, "marts.fct_work_queue"):
        return [], columns
    decided = set(exception_states(conn)["exception_id"].dropna())
    rows = conn.execute("""
        select item_id, record_label, detail, strftime(since_date, '%Y-%m')
        from marts.fct_work_queue
        where queue = 'amendments_awaiting_review' and legal_entity = ?
          and strftime(since_date, '%Y-%m') <= ?
        order by since_date, item_id""", [legal_entity, period]).fetchall()
    return [(item[:12], label, detail, month) for item, label, detail, month in rows
            if item not in decided], columns
