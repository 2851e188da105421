"""The camera's confidence watch and --save-uncertain options: out of range is one line, exit 2,
before the source opens or the model loads."""

from __future__ import annotations

import pytest

from camera_app.cli import main

BAD = [
    (["--watch-window", "5"], "--watch-window must be an integer >= 20"),
    (["--drift-alert", "nan"], "--drift-alert must be a finite PSI >= 0"),
    (["--margin", "-0.1"], "--margin must be a number between 0 and 1"),
    (["--save-uncertain", "unsure"], "--save-uncertain needs --threshold or --margin"),
    (["--save-uncertain", "unsure", "--threshold", "0.6", "--save-every", "inf"], "--save-every must be a finite"),
    (["--save-uncertain", "unsure", "--margin", "0.1", "--save-max", "0"], "--save-max must be an integer >= 1"),
]


@pytest.mark.parametrize(("options", "says"), BAD, ids=[b[1] for b in BAD])
def test_bad_watch_options_are_one_line(tiny_model, tmp_path, capsys, options, says):
    # a source that does not exist: the options are refused before anyone tries to open it
    argv = ["camera", "--model", str(tiny_model), "--source", str(tmp_path / "missing.mp4"), "--display", "none"]
    options = [str(tmp_path / "unsure") if option == "unsure" else option for option in options]
    assert main([*argv, *options]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) == 1 and says in err[0]
    assert not (tmp_path / "unsure").exists()


def test_the_options_reach_the_config():
    from camera_app.cli import camera_parser, config_from_args

    args = camera_parser().parse_args(["--model", "m.onnx", "--source", "0", "--watch-window", "120",
                                       "--drift-alert", "0.1", "--margin", "0.05", "--save-uncertain", "d",
                                       "--save-every", "2", "--save-max", "9"])
    config = config_from_args(args)
    assert (config.watch_window, config.drift_alert, config.margin) == (120, 0.1, 0.05)
    assert (config.save_uncertain, config.save_every, config.save_max) == ("d", 2.0, 9)
    defaults = config_from_args(camera_parser().parse_args(["--model", "m.onnx", "--source", "0"]))
    assert (defaults.watch_window, defaults.drift_alert, defaults.save_uncertain, defaults.save_max) == \
        (300, 0.25, None, 500)
