"""The ``q2c`` command line: generate the sample company, run the close, print its summary,
and run the revenue engine on an interchange folder."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

from q2c_pipeline import settings


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def cmd_generate(args: argparse.Namespace) -> int:
    from q2c_pipeline.sources.sample_company import generate_company

    out = Path(args.out)
    summary = generate_company(out, seed=args.seed, scale=args.scale)
    _out(f"sample company written to {out} (seed {args.seed}, scale {args.scale})")
    counts = summary.get("counts", summary)
    usage = {k: v for k, v in counts.items() if k.startswith("usage/")}
    for name, count in sorted(counts.items()):
        if name not in usage:
            _out(f"  {name:<48} {count}")
    if usage:
        _out(f"  {'usage/usage_events_<day>.parquet':<48} {sum(usage.values())} "
             f"events in {len(usage)} daily files")
    return 0


def prepare_dbt() -> None:
    """Parse the dbt project so Dagster loads a manifest that matches the models on disk
    (partial parsing keeps this to a few seconds)."""
    from dagster_dbt import DbtProject

    settings.ensure_dbt_on_path()
    project = DbtProject(
        project_dir=settings.DBT_PROJECT_DIR, profiles_dir=settings.DBT_PROJECT_DIR
    )
    project.preparer.prepare(project)


def load_definitions(duckdb_path: str | None = None, sample_dir: str | None = None):
    """The code location's Definitions, exactly as ``dagster dev`` loads them; given a
    warehouse file or snapshot folder, with the resources bound to those instead of
    ``settings`` (nothing is written to the environment)."""
    import dagster as dg
    from dagster_shared.record import copy

    from q2c_pipeline.defs.resources import build_resources

    prepare_dbt()
    defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    if duckdb_path is None and sample_dir is None:
        return defs
    bound = build_resources(str(Path(duckdb_path or settings.duckdb_path()).resolve()),
                            str(Path(sample_dir or settings.sample_dir()).resolve()))
    return copy(defs, resources={**(defs.resources or {}), **bound})


def run_close(
    duckdb_path: str, sample_dir: str, as_of: str = "", log_level: str = "WARNING"
) -> tuple[bool, list[str], list[str]]:
    """Materialize every asset (and run every check) with the month-end close job: (success,
    each failed step in one line, the checks that warned).

    The console shows warnings and errors (one line per owner and quarantine rule); the full
    event log is in the Dagster instance."""
    import dagster as dg

    defs = load_definitions(duckdb_path, sample_dir)
    job = defs.resolve_job_def("month_end_close_job")
    instance = _instance()
    run_config: dict = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    if as_of:
        run_config["ops"] = {"revenue_and_ledger": {"config": {"as_of": as_of}}}
    # dbt's own progress lines go to a log file beside the warehouse, not over the summary.
    dbt_log = Path(duckdb_path).with_suffix(".dbt.log")
    with dbt_log.open("w") as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(_WithoutDbtObservationNotes(sys.stderr)):
        result = job.execute_in_process(
            instance=instance, run_config=run_config, raise_on_error=False
        )
    not_passed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    failed_checks = [e for e in not_passed if e.severity != dg.AssetCheckSeverity.WARN]
    warned = sorted(e.check_name for e in not_passed if e not in failed_checks)
    for evaluation in failed_checks:
        _out(f"CHECK FAILED: {evaluation.asset_key.to_user_string()} {evaluation.check_name}")
    failures = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data is not None:
            error = event.step_failure_data.error
            text = (error.message if error is not None else event.message or "").strip()
            lines = [line.strip() for line in text.splitlines()
                     if line.strip() and set(line.strip()) - set("^~")]
            named = [line for line in lines if "Error" in line or "error" in line]
            failures.append(f"step {event.step_key} failed: "
                            f"{(named or lines or [''])[-1]}")
    return result.success and not failed_checks, failures, warned


class _WithoutDbtObservationNotes:
    """stderr without dagster-dbt's note on each dbt test it logs as an observation (tests on
    dbt sources and cross-model relationships: they still run, and dbt's log has them)."""

    NOTE = ("instead of an `AssetCheckResult`", "This test was not included in Dagster's")

    def __init__(self, stream) -> None:
        self.stream = stream
        self.skip_blank = False

    def write(self, text: str) -> int:
        kept = []
        for line in text.splitlines(keepends=True):
            if any(note in line for note in self.NOTE):
                self.skip_blank = True
                continue
            if self.skip_blank and not line.strip():
                continue
            self.skip_blank = False
            kept.append(line)
        return self.stream.write("".join(kept))

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False


def check_run_args(duckdb_path: Path, sample_dir: Path, as_of: str) -> list[str]:
    """What is wrong with a run's arguments, before any work starts (empty = nothing)."""
    from datetime import date

    problems = []
    if as_of:
        try:
            date.fromisoformat(as_of)
        except ValueError:
            problems.append(f"--as-of {as_of!r} is not a date YYYY-MM-DD")
    if not (sample_dir / "manifest.json").is_file():
        problems.append(f"--sample {sample_dir}: no snapshot there (no manifest.json); write one "
                        "with `q2c generate --out <folder>`")
    folder = next((p for p in (duckdb_path.parent, *duckdb_path.parents) if p.exists()), None)
    if folder is not None and not folder.is_dir():
        problems.append(f"--duckdb {duckdb_path}: {folder} is a file, not a folder")
    elif folder is not None and not os.access(folder, os.W_OK):
        problems.append(f"--duckdb {duckdb_path}: cannot write in {folder}")
    damaged = _damaged_warehouse(duckdb_path) if not problems else None
    if damaged:
        problems.append(damaged)
    if as_of and not problems and duckdb_path.is_file():
        posted = _latest_posting_as_of(duckdb_path)
        if posted is not None and as_of < posted:
            problems.append(
                f"--as-of {as_of} is before the ledger's latest posting as of {posted}: a close "
                "behind the ledger posts nothing (it cannot see what the later close posted); "
                f"run as of {posted} or later")
    return problems


def _damaged_warehouse(duckdb_path: Path) -> str | None:
    """Why the warehouse cannot be used (a damaged file or log), with the restore step; None
    when it opens and its ledger reads (or there is no warehouse yet, or it is busy)."""
    import duckdb

    from q2c_pipeline.warehouse import (
        WarehouseDamaged,
        WarehouseLocked,
        connect,
        damage_error,
    )

    if not duckdb_path.is_file():
        return None
    try:
        with connect(duckdb_path, read_only=True, lock_wait=0) as conn:
            has_ledger = conn.execute(
                "select count(*) from information_schema.tables where table_schema = 'ledger' "
                "and table_name = 'journal_lines'").fetchone()[0]
            if has_ledger:  # reads (and checksums) every block of the ledger
                conn.execute("select count(*), sum(hash(j)) from ledger.journal_lines j"
                             ).fetchone()
    except WarehouseDamaged as error:
        return f"--duckdb {error}"
    except WarehouseLocked:
        return None
    except (duckdb.BinderException, duckdb.CatalogException, duckdb.ParserException):
        return None  # a ledger of another shape is not damage
    except duckdb.Error as error:
        return f"--duckdb {damage_error(duckdb_path, error)}"
    return None


def _latest_posting_as_of(duckdb_path: Path) -> str | None:
    from q2c_pipeline.warehouse import connect

    try:
        with connect(duckdb_path, read_only=True, lock_wait=0) as conn:
            row = conn.execute("select max(posting_as_of) from ledger.journal_lines").fetchone()
    except Exception:  # noqa: BLE001 - no ledger yet (or unreadable): nothing to be behind
        return None
    return None if row is None or row[0] is None else str(row[0])[:10]


def cmd_run(args: argparse.Namespace) -> int:
    duckdb_path = Path(args.duckdb).resolve()
    sample_dir = Path(args.sample).resolve()
    problems = check_run_args(duckdb_path, sample_dir, args.as_of)
    if problems:
        for problem in problems:
            sys.stderr.write(f"q2c run: {problem}\n")
        sys.stderr.write("q2c run: nothing run\n")
        return 2
    duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ok, failures, warned = run_close(str(duckdb_path), str(sample_dir), args.as_of)
    elapsed = time.perf_counter() - started
    _out(f"month_end_close_job {'succeeded' if ok else 'FAILED'} in {elapsed:.1f}s")
    for failure in failures:
        _out(f"  {failure}")
    if warned:
        _out(f"checks warning ({len(warned)}; records held, work past its SLA: "
             "marts.fct_work_queue, q2c exceptions list): " + ", ".join(warned))
    _out(f"warehouse: {duckdb_path}")
    try:
        print_close_summary(str(duckdb_path))
    except Exception as error:  # noqa: BLE001 - one clear message, not a second traceback
        if ok:
            raise
        _out(f"no close summary: the run stopped before the marts it reads were built "
             f"({type(error).__name__}); the failure above is the cause")
    return 0 if ok else 1


def cmd_restore(args: argparse.Namespace) -> int:
    """Put the last good close's warehouse back (after a damaged file was named)."""
    from q2c_pipeline.warehouse import backup_path, connect, restore

    path = Path(args.duckdb).resolve()
    try:
        source = restore(path)
    except FileNotFoundError as error:
        sys.stderr.write(f"q2c restore: {error}\n")
        return 2
    with connect(path, read_only=True, lock_wait=0) as conn:
        posted = conn.execute("select max(posting_as_of), count(*) from ledger.journal_lines"
                              ).fetchone()
    _out(f"restored {path} from {source} (ledger: {posted[1]} lines posted as of "
         f"{str(posted[0])[:10]}); the damaged file is kept beside it as *.damaged")
    _out(f"next: run the close again (`q2c run --duckdb {path}`): it lands what the sources "
         "said since, posts it once, and the ERP drops already written are acknowledged, not "
         f"written again; the next good close replaces {backup_path(path).name}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    cmd_generate(argparse.Namespace(out=args.sample, seed=args.seed, scale=args.scale))
    return cmd_run(args)


def _instance():
    """The Dagster instance of ``settings.dagster_home()`` (the one ``dagster dev`` shows)."""
    import dagster as dg

    return dg.DagsterInstance.from_config(str(settings.dagster_home()))


def cmd_close_period(args: argparse.Namespace) -> int:
    """Lock (or reopen) one entity's period with close_period_job / reopen_period_job; exit 1
    with every blocker named when the lock is refused."""
    defs = load_definitions(duckdb_path=args.duckdb)
    job_name, op = ("reopen_period_job", "reopen_period") if args.reopen else (
        "close_period_job", "close_period")
    config = {"legal_entity": args.entity, "period": args.period}
    if args.actor:
        config["actor"] = args.actor
    if args.reason:
        config["reason"] = args.reason
    if args.reopen and not (args.actor and args.reason):
        _out(f"{args.entity} {args.period}: NOT reopened: say who (--as) and why (--reason)")
        return 2
    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=_instance(),
        run_config={"ops": {op: {"config": config}},
                    "loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        raise_on_error=False,
    )
    verb = "reopened" if args.reopen else "locked"
    if result.success:
        metadata = _output_metadata(result, op)
        if metadata.get("already_locked"):
            _out(f"{args.entity} {args.period}: already locked")
        elif args.reopen:
            _out(f"{args.entity} {args.period}: reopened; the close controls run again at the "
                 "next lock")
        else:
            _out(f"{args.entity} {args.period}: locked ({metadata.get('lines_in_period')} posted "
                 f"lines; {_plural(metadata.get('waived_exceptions_open'), 'waived exception')}"
                 " open); "
                 f"close pack {metadata.get('close_pack')}")
        return 0
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data is not None:
            message = event.step_failure_data.user_failure_data
            text = message.description if message is not None else event.message
            _out(f"{args.entity} {args.period}: NOT {verb}: {text}")
    return 1


def _plural(count, noun: str) -> str:
    """``1 waived exception``, ``7 waived exceptions``."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _output_metadata(result, op: str) -> dict:
    for event in result.events_for_node(op):
        if event.event_type_value == "STEP_OUTPUT":
            return {k: v.value for k, v in event.step_output_data.metadata.items()}
    return {}


def cmd_exceptions(args: argparse.Namespace) -> int:
    """List, show and decide on exceptions (waive, resolve, override), with role checks; every
    decision is appended to ledger.decisions and takes effect at the next close or lock."""
    from q2c_pipeline.close.decisions import DecisionRefused, load_roles, roles_path
    from q2c_pipeline.close.exceptions import (
        decide,
        exceptions_with_state,
        find_exception,
        review_items,
    )
    from q2c_pipeline.warehouse import connect

    path = Path(args.duckdb).resolve()
    if not path.is_file():
        sys.stderr.write(f"q2c exceptions: no warehouse at {path}; run the close first\n")
        return 2
    try:
        if args.action in ("list", "show"):
            with connect(path, read_only=True) as conn:
                if args.action == "list":
                    return _list_exceptions(exceptions_with_state(conn), args,
                                            review_items(conn))
                return _show_exception(conn, find_exception(conn, args.id))
        fields = dict(_field_value(item) for item in (getattr(args, "set", None) or []))
        roles = load_roles(roles_path(args.sample, settings.roles_path()))
        ids = [args.id] if isinstance(args.id, str) else args.id
        with connect(path) as conn:
            for found in [find_exception(conn, prefix) for prefix in ids]:  # all, or none
                row = decide(conn, roles, action=args.action, prefix=found["exception_id"],
                             actor=args.actor, reason=args.reason, fields=fields)
                _out(f"{found['exception_id'][:12]} {found['record_label']}: "
                     f"{DONE[args.action]}; decision {row['decision_seq']} by {row['actor']} "
                     f"as {row['role']}")
    except DecisionRefused as error:
        sys.stderr.write(f"q2c exceptions {args.action}: {error}\n")
        return 2
    return 0


DONE = {"waive": "waived (the lock of its period no longer waits for it)",
        "resolve": "resolved (closed without posting)",
        "override": "override recorded; it is applied at the next close (q2c run)"}


def _field_value(item: str) -> tuple[str, object]:
    """``FIELD=VALUE`` of --set (the value as ``field_value`` reads it)."""
    from q2c_pipeline.close.decisions import DecisionRefused
    from q2c_pipeline.close.exceptions import field_value

    field, sep, value = item.partition("=")
    if not sep or not field.strip():
        raise DecisionRefused(f"--set {item!r}: write FIELD=VALUE")
    return field.strip(), field_value(value)


def _list_exceptions(frame, args: argparse.Namespace, reviews=None) -> int:
    for column, wanted in (("legal_entity", args.entity), ("owner", args.owner),
                           ("state", args.state)):
        if wanted:
            frame = frame[frame[column] == wanted]
            if reviews is not None and len(reviews):
                reviews = reviews[reviews[column] == wanted]
    if args.roots:
        frame = frame[frame["rule"] != "held_by_upstream"]
    _out("blocks = the first month whose lock waits for it (every later month too)")
    _out(f"{'id':<13}{'entity':<11}{'blocks':<8}{'owner':<15}{'state':<17}{'rule':<29}record")
    for r in frame.itertuples(index=False):
        period = r.scope_period if isinstance(r.scope_period, str) else "all"
        _out(f"{r.exception_id[:12]:<13}{r.legal_entity:<11}{period:<8}{r.owner:<15}"
             f"{r.state:<17}{r.rule:<29}{r.record_label}")
    _out(f"{len(frame)} exception(s); q2c exceptions show ID for the reason, payload and "
         "decisions")
    if reviews is not None and len(reviews):
        _out("amendments awaiting review (the lock of their month waits for them; resolve "
             "keeps the treatment, override --set modification_treatment=... changes it):")
        for r in reviews.itertuples(index=False):
            _out(f"{r.exception_id[:12]:<13}{r.legal_entity:<11}{r.period:<8}{r.owner:<15}"
                 f"{r.state:<17}{'amendment_review':<29}{r.record_label}: {r.reason}")
    return 0


def _show_exception(conn, exception: dict) -> int:
    from q2c_pipeline.close.decisions import read_decisions

    for key in ("exception_id", "record_label", "legal_entity", "period", "owner", "rule",
                "field", "reason", "state", "owner_action", "correlation_id"):
        _out(f"{key:<15} {exception.get(key) if exception.get(key) is not None else ''}")
    decisions = read_decisions(conn)
    decisions = decisions[decisions["exception_id"] == exception["exception_id"]]
    _out("decisions:" if len(decisions) else "decisions:     none")
    for d in decisions.itertuples(index=False):
        _out(f"  {d.decision_seq} {d.decided_at:%Y-%m-%d %H:%M} UTC {d.action} by {d.actor} "
             f"({d.role}): {d.reason} {d.detail if d.action == 'override' else ''}".rstrip())
    corrected = _applied_overrides(conn, exception)
    if corrected:
        _out("payload (as q2c read it, with the corrections of decision(s) "
             f"{', '.join(str(seq) for seq, _ in corrected)}; the source sent "
             + "; ".join(was for _, was in corrected) + "):")
    else:
        _out("payload (as the source sent it):")
    _out(exception.get("payload") or "")
    return 0


def _applied_overrides(conn, exception: dict) -> list[tuple[int, str]]:
    """(decision, what the source sent for the fields it set) of each override the last run
    applied to this exception's record (canonical.overrides_applied)."""
    from q2c_pipeline.close.decisions import read_decisions
    from q2c_pipeline.close.exceptions import source_id_of
    from q2c_pipeline.warehouse import table_exists

    if not table_exists(conn, "canonical.overrides_applied"):
        return []
    source_id = source_id_of(exception.get("record_id"))
    seqs = [int(seq) for (seq,) in conn.execute(
        "select decision_seq from canonical.overrides_applied where status like 'applied%' and "
        "(record_id = ? or record_id = ?) order by decision_seq",
        [source_id, exception.get("record_id")]).fetchall()]
    decisions = read_decisions(conn).set_index("decision_seq")
    out = []
    for seq in seqs:
        detail = json.loads(decisions.loc[seq, "detail"] or "{}")
        sent = {}
        if detail.get("raw_table") and table_exists(conn, f"raw.{detail['raw_table']}"):
            rows = conn.execute(  # the landed version the override was pinned to
                f"select payload from raw.{detail['raw_table']} where record_id = ? and "
                "content_hash = ? limit 1",
                [str(detail.get("source_id")), detail.get("content_hash")]).fetchall()
            sent = json.loads(rows[0][0]) if rows else {}
        out.append((seq, ", ".join(f"{k}={json.dumps(sent.get(k))}" for k in detail["set"])
                    if sent else "the values before the correction"))
    return out


def cmd_summary(args: argparse.Namespace) -> int:
    print_close_summary(str(Path(args.duckdb).resolve()))
    return 0


def print_close_summary(duckdb_path: str) -> None:
    from q2c_pipeline.reporting import close_summary_lines

    for line in close_summary_lines(duckdb_path):
        _out(line)


def cmd_revrec(args: argparse.Namespace) -> int:
    """Run the engine on an interchange folder; refuse bad input with exit 2 naming file, line,
    column and rule (never a traceback)."""
    from datetime import date

    from q2c_pipeline.engine import run_engine
    from q2c_pipeline.interchange import InterchangeError, read_interchange, write_outputs
    from q2c_pipeline.revenue.treatments import load_treatments

    def refuse(lines: list[str]) -> int:
        for line in lines:
            sys.stderr.write(f"q2c revrec: {line}\n")
        return 2

    if args.as_of:
        try:
            as_of = date.fromisoformat(args.as_of)
        except ValueError:
            return refuse([f"--as-of {args.as_of!r} is not a date YYYY-MM-DD"])
        stated = "--as-of"
    else:
        as_of, stated = date.today(), "today; pass --as-of YYYY-MM-DD to choose"
    folder = Path(args.input)
    output = Path(args.output)
    blocker = next((p for p in (output, *output.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        return refuse([f"--output {args.output!r}: {blocker} is a file, not a folder; "
                       "nothing written"])
    try:
        tables, policy = read_interchange(folder)
        override = folder / "treatments.csv"
        treatments = load_treatments(override if override.exists() else None)
    except InterchangeError as err:
        return refuse([str(p) for p in err.problems]
                      + [f"{len(err.problems)} problem(s); nothing written"])
    except ValueError as err:
        return refuse([str(err), "nothing written"])
    try:
        result = run_engine(tables, policy, as_of, treatments=treatments)
    except ValueError as err:
        return refuse([str(err), "nothing written"])
    except Exception as err:  # noqa: BLE001 - a bug must still not greet the user as a traceback
        if args.debug:
            raise
        sys.stderr.write(f"q2c revrec: internal error ({type(err).__name__}: {err}); "
                         "rerun with --debug for the traceback and report it\n")
        return 3
    try:
        write_outputs(result, output, as_of=as_of)
    except OSError as err:
        return refuse([f"--output {args.output!r}: cannot write there ({err.strerror}); "
                       "nothing usable written"])
    _out(f"revrec as of {as_of} ({stated}): {len(result.allocation)} obligations, "
         f"{len(result.revenue_schedule)} schedule rows, {len(result.journal_lines)} journal "
         f"lines -> {args.output}")
    _out("money: decimal strings in major units of each row's currency; *_functional columns "
         "in major units of functional_currency (see manifest.json)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="q2c", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def company_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
        p.add_argument("--scale", type=int, default=1, help="company size multiplier (default 1)")

    def run_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--sample", default=settings.sample_dir(), help="source snapshot folder")
        p.add_argument("--duckdb", default=settings.duckdb_path(), help="warehouse file")
        p.add_argument("--as-of", default="", help="close date YYYY-MM-DD (default: snapshot's)")

    p = sub.add_parser("generate", help="write the sample company's source systems to a folder")
    p.add_argument("--out", default=settings.sample_dir())
    company_args(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("run", help="run month_end_close_job on a snapshot; print the summary")
    run_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="generate the sample company, run the close, print summary")
    run_args(p)
    company_args(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("summary", help="print the close summary from a warehouse file")
    p.add_argument("--duckdb", default=settings.duckdb_path())
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("close-period", help="lock an entity's period once every control "
                       "holds (or --reopen it); prints what blocks the lock")
    p.add_argument("--entity", required=True, help="legal entity, e.g. US01")
    p.add_argument("--period", required=True, help="YYYY-MM")
    p.add_argument("--as", dest="actor", default=os.getenv("Q2C_ACTOR", ""),
                   help="who acts (a person in roles.yaml; default Q2C_ACTOR, else the "
                   "close schedule's identity)")
    p.add_argument("--reason", default="", help="why (required to reopen)")
    p.add_argument("--reopen", action="store_true", help="reopen a locked period")
    p.add_argument("--duckdb", default=settings.duckdb_path())
    p.set_defaults(func=cmd_close_period)

    p = sub.add_parser("exceptions", help="list, show, waive, resolve or override exceptions")
    actions = p.add_subparsers(dest="action", required=True)
    for name, text in (("list", "every exception of the last close with its state"),
                       ("show", "one exception: reason, owner action, decisions, payload"),
                       ("waive", "accept it open for the period lock (controllership)"),
                       ("resolve", "close it without posting the record (controllership)"),
                       ("override", "correct the record at the next run: --set FIELD=VALUE")):
        a = actions.add_parser(name, help=text)
        a.add_argument("--duckdb", default=settings.duckdb_path(), help="warehouse file")
        if name == "list":
            a.add_argument("--entity", help="legal entity (or UNASSIGNED)")
            a.add_argument("--owner", help="sales_ops, billing_ops or controllership")
            a.add_argument("--state", help="open, waived, resolved or override_pending")
            a.add_argument("--roots", action="store_true",
                           help="only the records that hold others (no held_by_upstream)")
            continue
        if name == "show":
            a.add_argument("id", help="exception id (its first 6+ characters)")
        else:
            a.add_argument("id", nargs="+", help="exception id(s) (first 6+ characters each)")
        if name == "show":
            continue
        a.add_argument("--as", dest="actor", default=os.getenv("Q2C_ACTOR", ""),
                       required=not os.getenv("Q2C_ACTOR"), help="who decides (roles.yaml)")
        a.add_argument("--reason", required=True, help="why, for the decisions table")
        a.add_argument("--sample", default=settings.sample_dir(),
                       help="snapshot folder whose roles.yaml applies (or Q2C_ROLES_PATH)")
        if name == "override":
            a.add_argument("--set", action="append", required=True, metavar="FIELD=VALUE",
                           help="a source field and its corrected value (repeatable)")
    p.set_defaults(func=cmd_exceptions)

    p = sub.add_parser("restore", help="put back the last good close's warehouse (backups/)")
    p.add_argument("--duckdb", default=settings.duckdb_path(), help="warehouse file")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("revrec", help="run the revenue engine on an interchange folder")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--as-of", default="",
                   help="recognize and journalize through this day (default: today)")
    p.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    p.set_defaults(func=cmd_revrec)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # `q2c exceptions list | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
