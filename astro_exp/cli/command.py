"""The one error policy of every entry point: ``error: <one line>`` on stderr and the exit code.

Why one place: the commands used to print-and-exit in seven copies, and Hydra's own failures
(a bad override, a config group option that does not exist, an error inside
``hydra.utils.instantiate``) came out as several lines ending in "Set the environment
variable HYDRA_FULL_ERROR=1". :func:`command` turns a task function into a console entry
point whose failures a user can act on:

- :class:`~astro_exp.errors.AstroExpError` (also when ``instantiate`` wraps it), a bad
  override or a missing config option: ``error: <message>`` on one line, exit status 2;
- a command's own documented status (predict: 1 when every input failed): ``sys.exit(code)``
  in the task, passed through untouched;
- under ``--multirun`` a job's error is logged and re-raised, so that the sweeper records a
  failed job (Optuna: a FAIL trial) as it always did;
- anything else Hydra raises before the task starts (a plugin that is not installed, a
  config that does not resolve) is also one line, exit status 2;
- anything else is a bug: the full traceback, exit status 1. ``HYDRA_FULL_ERROR=1`` shows
  Hydra's own reporting for every error, as Hydra documents.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NoReturn

from omegaconf import DictConfig

from astro_exp.errors import AstroExpError

# every @hydra.main and every compose of the package: the YAML inside the package, never a path
CONFIG_PATH = "pkg://astro_exp.conf"
PROG = "astro-exp"

log = logging.getLogger("astro_exp.cli")

Task = Callable[[DictConfig], Any]
Prepare = Callable[[list[str]], list[str]]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: <message>`` as one line on stderr and exit with ``code``."""
    print(f"error: {one_line(message)}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def one_line(message: str) -> str:
    """``message`` on one line: the lines of a multi-line message joined by "; "."""
    parts = [p.strip() for p in str(message).splitlines() if p.strip()]
    return "; ".join(parts) if parts else str(message).strip()


def user_error(exc: BaseException) -> AstroExpError | None:
    """The :class:`AstroExpError` behind ``exc``: itself, or the cause that
    ``hydra.utils.instantiate`` wrapped as InstantiationException (``raise ... from e``), else
    None. Only explicit causes count: an error raised while handling a user error is a bug."""
    seen: set[int] = set()
    err: BaseException | None = exc
    while err is not None and id(err) not in seen:
        if isinstance(err, AstroExpError):
            return err
        seen.add(id(err))
        err = err.__cause__
    return None


def hydra_message(
    exc: BaseException, name: str, shorthand: dict[str, str] | None = None
) -> str | None:
    """One actionable line for Hydra's composition and override errors; None for others.

    ``shorthand`` maps a key prefix that ``prepare`` added back to what the user typed
    (dataset: ``dataset.colour`` was ``colour``)."""
    from hydra.errors import ConfigCompositionException, OverrideParseException

    if not isinstance(exc, ConfigCompositionException | OverrideParseException):
        return None
    text = str(exc)
    if "Primary config module 'astro_exp.conf' not found" in text:
        return f"{name}: the configs (the package astro_exp.conf) are not installed; run `pip install -e .` in the checkout"
    key = re.search(r"Could not override '([^']+)'\.\s*To append to your config use (\S+)", text)
    if key:
        typed = key.group(1)
        for prefix, short in (shorthand or {}).items():
            if typed.startswith(prefix):
                typed = short + typed[len(prefix) :]
                break
        return f"{name}: unknown key {typed!r}; --help lists the keys (a new key needs a +: {key.group(2)})"
    missing = re.search(r"Could not find '([^']+)'", text)
    options = re.search(r"Available options in '([^']+)':\n((?:\t[^\n]+\n?)+)", text)
    if missing and options:
        group, _, option = missing.group(1).rpartition("/")
        choices = ", ".join(options.group(2).split())
        return f"{name}: no option {option!r} in config group {group!r}; use one of {choices}"
    must = re.search(
        r"You must specify '([^']+)', e\.g, \S+\nAvailable options:\n((?:\t[^\n]+\n?)+)", text
    )
    if must:
        return f"{name}: pick a {must.group(1)}: one of {', '.join(must.group(2).split())}"
    if isinstance(exc, OverrideParseException):
        reason = text.splitlines()[0] if text else "not an override"
        return (
            f"{name}: cannot read {getattr(exc, 'override', '')!r} ({reason}); overrides are key=value, "
            "see https://hydra.cc/docs/advanced/override_grammar/basic/"
        )
    detail = (
        f"; {exc.__cause__}" if exc.__cause__ is not None and str(exc.__cause__) not in text else ""
    )
    return f"{name}: {one_line(text + detail)}"


def _in_multirun_job() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:  # noqa: BLE001 - no Hydra context: not a sweep job
        return False


def _clear_hydra() -> None:
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()


def _as_job(task: Task, returned: list[Any], started: list[bool]) -> Callable[[DictConfig], Any]:
    """``task`` as Hydra's job: notes that it started and what it returned; a user error ends
    the command with one line, except in a sweep job, where it is logged and re-raised."""

    @functools.wraps(task)
    def job(cfg: DictConfig) -> Any:
        started.append(True)
        try:
            value = task(cfg)
            returned.append(value)
            return value
        except Exception as e:
            err = user_error(e)
            if err is None:
                raise
            if _in_multirun_job():
                log.error("%s", err)
                raise  # the sweeper records a failed job (Optuna: a FAIL trial) and goes on
            fail(str(err))

    return job


@contextlib.contextmanager
def _hydra_command_line(argv0: str, args: list[str], own_report: bool) -> Iterator[None]:
    """``sys.argv`` as Hydra reads it and, when we report errors ourselves,
    ``HYDRA_FULL_ERROR=1`` so that Hydra raises instead of printing; both put back after, and
    Hydra's global state cleared before and after (a command run before in this process, in
    tests or notebooks, left it set)."""
    saved_argv, saved_env = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = [argv0, *args]
    if own_report:
        os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises instead of printing
    _clear_hydra()
    try:
        yield
    finally:
        _clear_hydra()
        sys.argv = saved_argv
        if own_report:
            if saved_env is None:
                os.environ.pop("HYDRA_FULL_ERROR", None)
            else:
                os.environ["HYDRA_FULL_ERROR"] = saved_env


def _failure_line(
    exc: Exception, label: str, shorthand: dict[str, str] | None, started: bool
) -> str | None:
    """The one line for a failed command: a user error, a Hydra composition error, or any
    error before the task ran (the command line or a config is at fault); None for a bug."""
    err = user_error(exc)
    if err is not None:
        return str(err)
    message = hydra_message(exc, label, shorthand)
    if message is None and not started:
        # Hydra failed before the task ran: the command line or a config is at fault
        message = f"{label}: {one_line(str(exc)) or type(exc).__name__}"
    return message


def command(
    config_name: str,
    *,
    name: str | Callable[[list[str]], str] | None = None,
    prepare: Prepare | None = None,
    shorthand: dict[str, str] | None = None,
) -> Callable[[Task], Callable[..., Any]]:
    """Make ``task(cfg)`` a console entry point ``main(argv=None)`` composed from
    ``conf/<config_name>.yaml`` (``pkg://astro_exp.conf``) with the one error policy.

    ``name``: the command's name in messages (default ``config_name``), or a function of the
    prepared command line (dataset: the chosen subcommand). ``prepare`` rewrites the command
    line before Hydra reads it (a subcommand word into a config group choice, the older
    ``--flag value`` spellings into ``flag=value``); ``shorthand`` undoes its key prefixes in
    messages (see :func:`hydra_message`). ``main(argv)`` returns what the task
    returned (for callers in Python; the console script ignores it: exit status 0), and
    ``main.task`` is the plain task, for tests and notebooks that compose a config themselves.
    """

    def wrap(task: Task) -> Callable[..., Any]:
        returned: list[Any] = []
        started: list[bool] = []

        import hydra

        hydra_main = hydra.main(
            version_base="1.3", config_path=CONFIG_PATH, config_name=config_name
        )(_as_job(task, returned, started))

        def main(argv: Iterable[str] | None = None) -> Any:
            args = list(sys.argv[1:] if argv is None else argv)
            if prepare is not None:
                try:
                    args = prepare(args)
                except AstroExpError as e:
                    fail(str(e))
            label = name(args) if callable(name) else (name or config_name)
            # multiruns too: a sweeper's own setting errors are one line (jobs' errors stay
            # inside the sweep: the job wrapper above logs and re-raises them to the sweeper)
            own_report = os.environ.get("HYDRA_FULL_ERROR") != "1"
            argv0 = f"{PROG} {name if isinstance(name, str) else config_name}"
            with _hydra_command_line(argv0, args, own_report):
                returned.clear()
                started.clear()
                try:
                    hydra_main()
                    return returned[0] if returned else None
                except Exception as e:
                    if not own_report:
                        raise
                    message = _failure_line(e, label, shorthand, bool(started))
                    if message is None:
                        raise
                    fail(message)

        main.__doc__ = task.__doc__
        main.__name__ = task.__name__
        main.task = task  # type: ignore[attr-defined]
        return main

    return wrap


# --------------------------------------------------------------------- command-line rewriting
# Hydra's flags that take a value (``--cfg job``): that value is no positional word
_HYDRA_VALUE_FLAGS = {
    "-c",
    "--cfg",
    "-p",
    "--package",
    "-i",
    "--info",
    "-cp",
    "--config-path",
    "-cn",
    "--config-name",
    "-cd",
    "--config-dir",
    "-sc",
    "--shell-completion",
    "--experimental-rerun",
}
_SPECIAL = re.compile(r"[\s,\[\]{}()='\"\\$]")


def quote(value: str) -> str:
    """``value`` as one Hydra override value: quoted when it holds characters of the grammar."""
    if not _SPECIAL.search(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def positional_args(key: str, many: bool = False) -> Prepare:
    """A ``prepare`` that reads the words of a command line that are neither an override nor
    a Hydra flag (``compare outputs/multirun/...``) as the value of ``key`` (a list when
    ``many``); everything else goes to Hydra as typed.

    >>> positional_args("dirs", many=True)(["runs/a", "runs/b", "metric=test/acc"])
    ['metric=test/acc', 'dirs=[runs/a,runs/b]']
    """

    def rewrite(args: list[str]) -> list[str]:
        out: list[str] = []
        words: list[str] = []
        i = 0
        while i < len(args):
            a = args[i]
            if not a.startswith(("-", "+", "~")) and ("=" not in a or os.path.exists(a)):
                words.append(a)
            else:
                out.append(a)
                if a in _HYDRA_VALUE_FLAGS and i + 1 < len(args):
                    i += 1
                    out.append(args[i])
            i += 1
        if words:
            if many:
                out.append(f"{key}=[{','.join(quote(w) for w in words)}]")
            elif len(words) == 1:
                out.append(f"{key}={quote(words[0])}")
            else:
                raise AstroExpError(f"one {key} please, got {len(words)}: {' '.join(words)}")
        return out

    return rewrite


def metadata_shorthand(args: list[str]) -> list[str]:
    """``metadata=x.jsonl`` -> ``metadata.file=x.jsonl`` (conf/metadata is a config group, so
    the plain key would pick a group option), and ``text=<free text>`` quoted for Hydra's
    grammar (a day's words hold spaces, colons and commas)."""
    out = []
    for a in args:
        key, _, value = a.partition("=")
        if key == "metadata" and value and value not in ("texts", "null"):
            out.append(f"metadata.file={quote(value)}")
        elif key == "text" and value and not value.startswith(("'", '"')) and value != "null":
            out.append(f"text={quote(value)}")
        else:
            out.append(a)
    return out
