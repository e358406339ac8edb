"""CLI conventions (issue 15, point 6): --version, help and defaults for every tune flag, and
$OPTUNA_GAMMA_DATA_ROOT as the default --data-root."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from optuna_gamma import __version__
from optuna_gamma.tuner.cli import _build_parser
from optuna_gamma.tuner.cli import _check_args
from optuna_gamma.tuner.cli import DATA_ROOT_ENV
from optuna_gamma.tuner.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"optuna-gamma {__version__}"


FLAGS_WITH_DEFAULTS = {
    "--sampler": "gamma",
    "--epochs": "1",
    "--seed": "0",
    "--mode": "per-epoch",
    "--valid-fraction": "0.2",
    "--batch-size": "50",
    "--weight-decay": "0.001",
    "--momentum": "0.0",
    "--n-startup-trials": "2",
}


def _help_of(parser: argparse.ArgumentParser, flag: str) -> str:
    (action,) = [a for a in parser._actions if flag in a.option_strings]
    assert action.help, f"{flag} has no help"
    return action.help % {"default": action.default, "prog": parser.prog}


def test_every_tune_flag_has_help_and_shows_its_default() -> None:
    tune = _build_parser().subparsers["tune"]  # type: ignore[attr-defined]
    for action in tune._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{action.option_strings[0]} has no help"
    for flag, default in FLAGS_WITH_DEFAULTS.items():
        assert f"(default {default})" in _help_of(tune, flag), flag
    for flag in ("--keep-trial-states", "--no-progress", "--overwrite"):
        assert "default" in _help_of(tune, flag) or "first" in _help_of(tune, flag), flag
    text = tune.format_help()
    assert "(default per-epoch)" in " ".join(text.split())


def test_data_root_defaults_to_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    argv = ["tune", "--dataset", "mnist"]
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    parser = _build_parser()
    tune = parser.subparsers["tune"]  # type: ignore[attr-defined]
    args = parser.parse_args(argv)
    with pytest.raises(ValueError, match=rf"--data-root is required .*\${DATA_ROOT_ENV}"):
        _check_args(args, tune)
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path))
    args = _build_parser().parse_args(argv)
    assert args.data_root == str(tmp_path)
    _check_args(args, tune)  # no "--data-root is required"
    # an explicit flag wins over the environment
    assert _build_parser().parse_args([*argv, "--data-root", "/x"]).data_root == "/x"


def test_built_in_trainer_flags_with_trainer_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """With --trainer the built-in trainer's flags (--subset, --batch-size, --model, ...) did
    nothing, silently; they are refused in one line, and --trainer-arg without --trainer too.
    Nothing is loaded or written."""
    from optuna_gamma.tuner.cli import main

    mine = ["tune", "--trainer", "examples/own_training.py:make_trainer", "--budget", "4"]
    for extra, named in (
        (["--subset", "100"], "--subset belongs to the built-in trainer"),
        (["--batch-size", "32", "--model", "mlp"], "--model, --batch-size belong to the built-in"),
        (["--tune-momentum", "0.5,0.9"], "--tune-momentum belongs"),
        (["--dataset", "digits"], "--dataset belongs"),
    ):
        with pytest.raises(SystemExit) as exited:
            main([*mine, *extra, "--run-dir", str(tmp_path / "r")])
        assert exited.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and named in err[0] and "--trainer-arg KEY=VALUE" in err[0], err
    with pytest.raises(SystemExit) as exited:
        main(["tune", "--dataset", "digits", "--trainer-arg", "a=1"])
    assert exited.value.code == 2
    assert "--trainer-arg passes arguments to the factory" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
