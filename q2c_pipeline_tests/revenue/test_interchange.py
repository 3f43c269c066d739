from datetime import date
from pathlib import Path

import pytest

from q2c_pipeline.engine import run_engine
from q2c_pipeline.interchange import read_interchange, write_outputs

EXAMPLES = Path(__file__).parents[1] / "fixtures" / "interchange"


def test_annual_subscription_example_reproduces_expected_outputs_byte_for_byte(tmp_path):
    folder = EXAMPLES / "annual_subscription_daily"
    tables, policy = read_interchange(folder)
    write_outputs(run_engine(tables, policy, date(2026, 3, 31)), tmp_path)
    for name in ("allocation", "revenue_schedule", "journal_lines", "account_balances"):
        expected = (folder / "expected" / f"{name}.csv").read_bytes()
        assert (tmp_path / f"{name}.csv").read_bytes() == expected, name


def test_interchange_reader_converts_decimal_strings_to_minor_units():
    tables, policy = read_interchange(EXAMPLES / "annual_subscription_daily")
    assert tables["invoice_lines"]["amount"].tolist() == [1_200_000]
    assert policy.amortization == "day"


def test_bad_money_value_names_file_line_and_column(tmp_path):
    (tmp_path / "payments.csv").write_text(
        "payment_id,paid_at,amount,currency\np1,2026-01-01,12.00,USD\np2,2026-01-02,1x,USD\n")
    with pytest.raises(ValueError, match=r"payments.csv: line 3, column amount"):
        read_interchange(tmp_path)
