"""``xwing train-side``: both formats end to end on tiny data, the held-out measurement, --evaluate."""

import json

import numpy as np
import pytest

from _gl import require_gl  # noqa: E402
from xwing.cli import main
from xwing.infer.side import SideClassifier

TINY = ["--count", "40", "--val-count", "20", "--held-out-count", "20", "--epochs", "1"]


@pytest.mark.parametrize("extra", [[], ["--profile", "--look", "wide", "--variants", "2"]],
                         ids=["format 1", "format 2, wide looks, variants"])
def test_train_side_writes_a_cue_that_loads_and_is_measured_on_the_held_out_ship(tmp_path, capsys, extra):
    pytest.importorskip("torch")
    require_gl()
    out = tmp_path / "s.side.npz"
    assert main(["train-side", "--out", str(out), *TINY, *extra]) == 0
    clf = SideClassifier.load(out)
    assert clf.profile == ("--profile" in extra)
    doc = json.loads(out.with_suffix(".json").read_text())
    assert doc["config"]["look"] == ("wide" if extra else "ship")
    for name in ("val", "held_out"):
        assert doc[name]["n"] > 10 and 0 <= doc[name]["roll_accuracy"] <= 1
    assert doc["numpy_vs_torch_max_abs_logit_diff"] < 1e-3
    assert 0.0 <= clf.edge_on_weight <= 1.0 and (clf.edge_on_weight == 0.0 or clf.profile)
    printed = capsys.readouterr().out
    assert "held-out" in printed and "roll right" in printed
    # --evaluate measures the file again, the same way, without training
    assert main(["train-side", "--evaluate", str(out), *TINY]) == 0
    again = json.loads(out.with_suffix(".eval.json").read_text())
    assert again["held_out"]["n"] == doc["held_out"]["n"]
    np.testing.assert_allclose(again["held_out"]["roll_accuracy"], doc["held_out"]["roll_accuracy"])


def test_train_side_bad_input_is_a_one_line_error(tmp_path, capsys):
    pytest.importorskip("torch")
    assert main(["train-side", "--evaluate", str(tmp_path / "none.npz"), *TINY]) == 2
    err = capsys.readouterr().err
    assert "none.npz" in err and err.count("\n") == 1
    assert main(["train-side", "--variants", "-1", *TINY]) == 2
