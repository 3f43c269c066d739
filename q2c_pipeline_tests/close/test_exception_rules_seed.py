"""The owner actions fct_exceptions shows (dbt seed exception_rules) are docs/exceptions.md's."""

from __future__ import annotations

import csv
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def documented_actions() -> dict[str, str]:
    """rule -> "what the owner does" from the rule table of docs/exceptions.md (a rule listed
    for a record and for a file gets both, the file's after '; for a file: ')."""
    actions: dict[str, str] = {}
    text = (ROOT / "docs" / "exceptions.md").read_text()
    for line in text.split("\n## ")[0].splitlines():  # the rule table, before the workflow
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        action = cells[3].replace("`", "")
        for rule in re.findall(r"`([a-z_0-9]+)`", cells[0]):
            actions[rule] = (f"{actions[rule]}; for a file: {action}" if rule in actions
                             else action)
    return actions


def test_the_seed_states_what_the_docs_say_for_every_rule():
    with (ROOT / "dbt_models" / "seeds" / "exception_rules.csv").open(newline="") as handle:
        seed = {row["rule"]: row["owner_action"] for row in csv.DictReader(handle)}
    docs = documented_actions()
    assert len(docs) > 40
    assert seed == docs
