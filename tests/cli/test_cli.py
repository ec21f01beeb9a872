import subprocess
import sys

import pytest

from xwing.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    assert "usage: xwing " + name in capsys.readouterr().out


def test_inspect_seed_reference(tmp_path, seed_reference, capsys):
    assert main(["inspect", str(seed_reference), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "samples         2" in out and "fx 248.889" in out
    import cv2

    sheet = cv2.imread(str(tmp_path / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[1] >= 2 * 256
    # the box is drawn: green pixels near the ship in the first tile
    tile = sheet[2:258, 2:258]
    green = (tile[:, :, 1] > 200) & (tile[:, :, 0] < 80) & (tile[:, :, 2] < 80)
    assert green[80:180, 80:180].sum() > 100
    assert (tmp_path / "summary.json").is_file()


def test_bad_input_is_one_line_and_nonzero(tmp_path):
    r = subprocess.run([sys.executable, "-m", "xwing", "inspect", str(tmp_path / "missing")],
                       capture_output=True, text=True)
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert lines[-1].startswith("xwing inspect: error:") and "missing" in lines[-1]
    assert "Traceback" not in r.stderr


def test_inference_modules_do_not_import_torch_or_moderngl():
    code = ("import sys, xwing, xwing.cli, xwing.geometry.pnp, xwing.geometry.crop, xwing.geometry.metrics, "
            "xwing.cli.inspect, xwing.io.draw; "
            "bad = [m for m in ('torch', 'moderngl', 'timm') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
