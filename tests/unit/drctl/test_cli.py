"""The command line: every subcommand has --help; usage errors exit 2."""

from __future__ import annotations

import pytest

from ops.drctl.cli import COMMANDS, build_parser, main


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "--env" in text and "--profile" in text and "--plan" in text


def test_top_level_help_lists_the_commands_and_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert all(c.name in text for c in COMMANDS)
    assert "3 preflight problems" in text and "4 refused by a guard" in text


def test_subcommand_options() -> None:
    args = build_parser().parse_args(
        ["deploy", "--env", "qa-2", "--dry-run", "--only", "dns", "budget", "--param", "A=b"]
    )
    assert (args.env, args.dry_run, args.only, args.param) == (
        "qa-2",
        True,
        ["dns", "budget"],
        ["A=b"],
    )
    args = build_parser().parse_args(
        ["teardown", "--env", "prod", "--skip-final-snapshot", "--i-mean-it-delete-prod", "--yes"]
    )
    assert (args.skip_final_snapshot, args.i_mean_it_delete_prod, args.yes) == (True, True, True)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["deploy"],  # --env is required
        ["deploy", "--env", "Prod"],
        ["deploy", "--env", "a_b"],
        ["deploy", "--env", "x" * 17],
        ["explode", "--env", "dev"],
        ["teardown", "--env", "dev", "--dry-run"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_a_malformed_param_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preflight", "--env", "dev", "--param", "novalue"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
