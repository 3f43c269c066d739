"""`q2c revrec`: the revenue engine on an interchange folder, from the command line."""

import shutil
from datetime import date
from pathlib import Path

from q2c_pipeline.cli import main
from q2c_pipeline.engine import run_engine
from q2c_pipeline.interchange import read_interchange, write_outputs

EXAMPLE = Path(__file__).parents[1] / "fixtures" / "interchange" / "stripe_monthly_subscription"
OUTPUTS = ("allocation", "revenue_schedule", "journal_lines", "account_balances")


def test_revrec_writes_the_four_outputs_equal_to_the_expected_folder(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["revrec", "--input", str(EXAMPLE), "--output", str(out),
                 "--as-of", "2019-01-31"])
    assert code == 0
    for name in OUTPUTS:
        assert (out / f"{name}.csv").read_bytes() == (
            EXAMPLE / "expected" / f"{name}.csv").read_bytes(), name
    assert "revrec as of 2019-01-31" in capsys.readouterr().out


def test_revrec_without_as_of_runs_as_of_today_and_says_so(tmp_path, capsys):
    code = main(["revrec", "--input", str(EXAMPLE), "--output", str(tmp_path / "cli")])
    assert code == 0
    out = capsys.readouterr().out
    today = date.today()
    assert f"revrec as of {today} (today; pass --as-of YYYY-MM-DD to choose)" in out
    tables, policy = read_interchange(EXAMPLE)
    write_outputs(run_engine(tables, policy, today), tmp_path / "direct", as_of=today)
    for name in (*OUTPUTS, "contract_positions", "manifest"):
        suffix = "json" if name == "manifest" else "csv"
        assert (tmp_path / "cli" / f"{name}.{suffix}").read_bytes() == (
            tmp_path / "direct" / f"{name}.{suffix}").read_bytes(), name


def test_revrec_bad_amount_exits_2_naming_file_row_and_column(tmp_path, capsys):
    folder = tmp_path / "in"
    shutil.copytree(EXAMPLE, folder)
    (folder / "payments.csv").write_text(
        "payment_id,paid_at,amount,currency,invoice_id\n"
        "stripe:py_1,2019-01-15,31.O0,USD,stripe:in_1\n")
    code = main(["revrec", "--input", str(folder), "--output", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "payments.csv: line 2, column amount: '31.O0' is not a decimal" in err
    assert not (tmp_path / "out").exists()


BUNDLE = Path(__file__).parents[1] / "fixtures" / "interchange" / "kpmg_bundle_discount_telco"


def _refused(tmp_path, capsys, edit, folder=BUNDLE):
    """Copy the folder, apply ``edit`` to it, run revrec: (exit code, stderr)."""
    target = tmp_path / "in"
    shutil.copytree(folder, target)
    edit(target)
    code = main(["revrec", "--input", str(target), "--output", str(tmp_path / "out"),
                 "--as-of", "2026-12-31"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()
    return code, err


def _replace(name, old, new):
    def edit(folder):
        path = folder / name
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))
    return edit


def test_an_unknown_revenue_pattern_is_refused_naming_file_line_column_and_rule(tmp_path, capsys):
    code, err = _refused(tmp_path, capsys, _replace(
        "contract_lines.csv", "2026-01-01,point_in_time\nsf:line_internet",
        "2026-01-01,ratablee\nsf:line_internet"))
    assert code == 2
    assert ("q2c revrec: contract_lines.csv: line 2, column revenue_pattern: contract_lines "
            "record 'sf:line_phone': field 'revenue_pattern' value 'ratablee' is not one of "
            "ratable, point_in_time, usage" in err)
    assert "[invalid_value]" in err


def test_milestone_is_not_a_revenue_pattern_q2c_knows(tmp_path, capsys):
    code, err = _refused(tmp_path, capsys, _replace(
        "products.csv", "TV,point_in_time", "TV,milestone"))
    assert code == 2
    assert "products.csv: line 4, column revenue_pattern" in err
    assert "'milestone'" in err and "[invalid_value]" in err


def test_an_invoice_in_another_currency_than_its_contract_is_refused(tmp_path, capsys):
    def edit(folder):
        (folder / "invoices.csv").write_text(
            "invoice_id,customer_id,currency,finalized_at,contract_id\n"
            "in_1,sf:001CUSTOMER,EUR,2026-01-01,sf:800TELCO\n")
    code, err = _refused(tmp_path, capsys, edit)
    assert code == 2
    assert ("invoices.csv: line 2, column currency: invoices record 'in_1': field 'currency' "
            "value 'EUR' differs from contract 'sf:800TELCO' currency 'USD'" in err)
    # the first rule broken names the problem; the one it leads to is said too
    assert "no FX rate EUR->USD" in err and err.rstrip().splitlines()[-2].endswith(
        "[currency_mismatch]")


def test_more_decimals_than_the_currency_has_are_refused_not_rounded(tmp_path, capsys):
    code, err = _refused(tmp_path, capsys, _replace(
        "contract_lines.csv", "1,20.00,20.00", "1,10.005,20.00"))
    assert code == 2
    assert ("contract_lines.csv: line 2, column amount: '10.005' has more decimals than USD "
            "allows (2) [too_precise]") in err


def test_a_fraction_of_a_yen_is_refused(tmp_path, capsys):
    def edit(folder):
        for name in ("contracts.csv", "customers.csv"):
            path = folder / name
            path.write_text(path.read_text().replace("USD", "JPY"))
        _replace("contract_lines.csv", "1,20.00,20.00", "1,100.5,20")(folder)
        _replace("contracts.csv", "80.00", "80")(folder)
    code, err = _refused(tmp_path, capsys, edit)
    assert code == 2
    assert "'100.5' has more decimals than JPY allows (0) [too_precise]" in err
    # the other lines' "30.00" and "40.00" are whole yen: not refused
    assert "'30.00'" not in err


def test_a_misspelt_column_or_file_is_refused_not_ignored(tmp_path, capsys):
    def edit(folder):
        _replace("contract_lines.csv", "revenue_pattern", "revenue_patern")(folder)
        (folder / "payment.csv").write_text("payment_id\n")
    code, err = _refused(tmp_path, capsys, edit)
    assert code == 2
    assert ("contract_lines.csv: line 1, column revenue_patern: 'revenue_patern' is not a "
            "column of contract_lines (did you mean 'revenue_pattern'?) [unknown_column]") in err
    assert "payment.csv: is not a canonical table" in err and "[unknown_file]" in err


def test_every_problem_is_listed_not_only_the_first(tmp_path, capsys):
    def edit(folder):
        _replace("contract_lines.csv", "1,20.00,20.00", "1,2x,20.00")(folder)
        _replace("contract_lines.csv", "1,30.00,30.00", "1,30.001,30.00")(folder)
    code, err = _refused(tmp_path, capsys, edit)
    assert code == 2
    assert "line 2, column amount: '2x' is not a decimal [invalid_type]" in err
    assert "line 3, column amount: '30.001' has more decimals" in err
    assert "2 problem(s); nothing written" in err


def test_a_bad_policy_or_treatment_override_is_refused_without_a_traceback(tmp_path, capsys):
    code, err = _refused(tmp_path, capsys, lambda f: (f / "policy.yaml").write_text(
        "amortisation: day\n"))
    assert code == 2
    assert "policy.yaml: unknown policy settings: amortisation [invalid_policy]" in err


def test_an_internal_error_is_a_message_and_exit_3_not_a_traceback(tmp_path, capsys, monkeypatch):
    import q2c_pipeline.engine as engine

    def broken(*args, **kwargs):
        raise KeyError("boom")
    monkeypatch.setattr(engine, "run_engine", broken)
    code = main(["revrec", "--input", str(BUNDLE), "--output", str(tmp_path / "out"),
                 "--as-of", "2026-12-31"])
    err = capsys.readouterr().err
    assert code == 3
    assert "internal error (KeyError: 'boom'); rerun with --debug" in err
    assert "Traceback" not in err


def test_every_money_column_is_in_major_units_and_the_manifest_says_which(tmp_path):
    import json

    folder = Path(__file__).parents[1] / "fixtures" / "interchange" / (
        "asc606_example5_case_b_prospective")
    main(["revrec", "--input", str(folder), "--output", str(tmp_path), "--as-of", "2026-12-31"])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["as_of"] == "2026-12-31"
    columns = manifest["files"]["allocation.csv"]["money_columns"]
    assert columns["deferred_reductions"] == "major units of currency"
    assert manifest["files"]["journal_lines.csv"]["money_columns"]["debit_functional"] == (
        "major units of functional_currency")
    allocation = (tmp_path / "allocation.csv").read_text().splitlines()
    header = allocation[0].split(",")
    for row in allocation[1:]:
        value = row.split(",")[header.index("deferred_reductions")]
        assert value == "" or "." in value, row


def test_a_misspelt_header_is_named_once_with_its_likely_meaning(tmp_path, capsys):
    # 'currncy' for 'currency' in contracts.csv: the missing required column and the unknown
    # one, each with the other as the hint; not one "has no known currency" per amount
    code, err = _refused(tmp_path, capsys, _replace(
        "contracts.csv", "currency", "currncy"))
    assert code == 2
    assert ("contracts.csv: line 1, column currency: is a required column of contracts and is "
            "missing (is 'currncy' a misspelling of it?) [missing_column]") in err
    assert ("contracts.csv: line 1, column currncy: 'currncy' is not a column of contracts "
            "(did you mean 'currency'?) [unknown_column]") in err
    assert "no known currency" not in err and "2 problem(s)" in err


def test_a_missing_or_empty_products_file_is_named_as_such(tmp_path, capsys):
    code, err = _refused(tmp_path, capsys, lambda f: (f / "products.csv").unlink())
    assert code == 2
    assert ("products.csv: is missing: contract_lines.csv names products (their revenue "
            "pattern and SSP) [missing_file]") in err
    code, err = _refused(tmp_path / "empty", capsys,
                         lambda f: (f / "products.csv").write_text(""))
    assert code == 2
    assert "products.csv: is empty: a table needs at least its header line [empty_file]" in err


def test_spaces_around_a_value_are_not_part_of_it(tmp_path, capsys):
    # 'point_in_time ' (a trailing space from a spreadsheet) is point_in_time: the same outputs
    spaced = tmp_path / "spaced"
    shutil.copytree(BUNDLE, spaced)
    path = spaced / "products.csv"
    path.write_text(path.read_text().replace("TV,point_in_time", "TV , point_in_time "))
    for folder, out in ((BUNDLE, tmp_path / "a"), (spaced, tmp_path / "b")):
        assert main(["revrec", "--input", str(folder), "--output", str(out),
                     "--as-of", "2026-12-31"]) == 0
    for name in (*OUTPUTS, "contract_positions"):
        assert (tmp_path / "a" / f"{name}.csv").read_bytes() == (
            tmp_path / "b" / f"{name}.csv").read_bytes(), name


def test_an_output_path_that_is_a_file_is_refused_without_a_traceback(tmp_path, capsys):
    blocker = tmp_path / "report.txt"
    blocker.write_text("not a folder")
    for output in (blocker, blocker / "sub"):
        code = main(["revrec", "--input", str(BUNDLE), "--output", str(output),
                     "--as-of", "2026-12-31"])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err
        assert f"{blocker} is a file, not a folder; nothing written" in err
    assert blocker.read_text() == "not a folder"
