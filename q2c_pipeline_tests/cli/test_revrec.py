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


def test_revrec_without_as_of_runs_to_the_last_date_the_folder_mentions(tmp_path):
    # the latest date in the folder is the service end 2019-02-15
    main(["revrec", "--input", str(EXAMPLE), "--output", str(tmp_path / "cli")])
    tables, policy = read_interchange(EXAMPLE)
    write_outputs(run_engine(tables, policy, date(2019, 2, 15)), tmp_path / "direct")
    for name in OUTPUTS:
        assert (tmp_path / "cli" / f"{name}.csv").read_bytes() == (
            tmp_path / "direct" / f"{name}.csv").read_bytes(), name


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
