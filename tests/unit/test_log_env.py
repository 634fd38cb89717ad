"""``INKIT_LOG``: read once, where clients read the environment; a level and, if needed, stderr."""

from __future__ import annotations

import logging
import threading

import pytest

from inkit_async import AsyncInkit, _log
from inkit_async._log import level_of, log_from_env
from tests.support.constants import TOKEN


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> logging.Logger:
    """A new logger, and no read yet; ``alone`` cuts it off from the handlers above it."""
    monkeypatch.setattr(_log, "_read", threading.Event())
    return logging.getLogger(f"inkit_env_test.{request.node.name}")


def alone(target: logging.Logger) -> logging.Logger:
    """*target*, not propagating: no handler above it counts (pytest's own included).

    Called in the test itself: pytest attaches its capturing handler to the loggers
    that do not propagate when each phase of a test starts.
    """
    target.propagate = False
    return target


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("debug", logging.DEBUG),
        ("DEBUG", logging.DEBUG),
        (" info\n", logging.INFO),
        ("Warning", logging.WARNING),
        (None, None),
        ("", None),
        ("   ", None),
    ],
)
def test_the_levels_inkit_log_may_name(value, level):
    """Three names, any case, spaces around; unset or empty: nothing."""
    assert level_of(value) == level


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("verbose", "'verbose'"),
        ("10", "a value (not shown)"),
        ("debug\x1b[2J", "a value (not shown)"),
        ("tok_" + "x" * 40, "a value (not shown)"),
    ],
)
def test_an_unknown_value_is_ignored_with_a_warning(value, shown):
    """A RuntimeWarning naming the variable; the value quoted only when a short word."""
    with pytest.warns(RuntimeWarning, match="INKIT_LOG is set to") as warned:
        assert level_of(value) is None
    [warning] = warned
    assert shown in str(warning.message)
    assert "debug, info, warning" in str(warning.message)
    if shown.startswith("a value"):
        assert value not in str(warning.message)


def test_it_sets_the_level_and_adds_one_stderr_handler(fresh, monkeypatch):
    """No handler anywhere: one of ours, once, however many times it is applied."""
    monkeypatch.setenv("INKIT_LOG", "debug")
    alone(fresh)
    log_from_env(fresh)
    log_from_env(fresh)
    monkeypatch.setattr(_log, "_read", threading.Event())
    log_from_env(fresh)  # even read again: the handler is there, so none is added
    assert fresh.level == logging.DEBUG
    [handler] = fresh.handlers
    assert isinstance(handler, logging.StreamHandler)
    assert handler.formatter is not None
    assert handler.formatter._fmt == _log.LOG_FORMAT  # noqa: SLF001


def test_with_a_handler_of_the_app_only_the_level_is_set(fresh, monkeypatch):
    """The app's logging shows the records already: a second handler would repeat each line."""
    monkeypatch.setenv("INKIT_LOG", "info")
    apps = logging.NullHandler()
    alone(fresh).addHandler(apps)
    log_from_env(fresh)
    assert fresh.level == logging.INFO
    assert fresh.handlers == [apps]


def test_it_is_read_once_per_process(fresh, monkeypatch):
    """A later change of the variable changes nothing."""
    monkeypatch.setenv("INKIT_LOG", "warning")
    log_from_env(fresh)
    monkeypatch.setenv("INKIT_LOG", "debug")
    log_from_env(fresh)
    assert fresh.level == logging.WARNING


def test_unset_or_unknown_changes_nothing(fresh, monkeypatch):
    """No level, no handler."""
    monkeypatch.delenv("INKIT_LOG", raising=False)
    alone(fresh)
    log_from_env(fresh)
    monkeypatch.setattr(_log, "_read", threading.Event())
    monkeypatch.setenv("INKIT_LOG", "loud")
    with pytest.warns(RuntimeWarning):
        log_from_env(fresh)
    assert (fresh.level, fresh.handlers) == (logging.NOTSET, [])


def test_the_first_client_reads_it_and_warns_at_the_callers_line(monkeypatch):
    """AsyncInkit(...) applies it; an unknown value's warning points at the caller."""
    monkeypatch.setattr(_log, "_read", threading.Event())
    monkeypatch.setenv("INKIT_LOG", "loud")
    with pytest.warns(RuntimeWarning, match="INKIT_LOG") as warned:
        AsyncInkit(TOKEN)
    assert warned[0].filename == __file__
