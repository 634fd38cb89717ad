"""The package's public surface: exports, docstrings, typing marker, version."""

from __future__ import annotations

import enum
import importlib.metadata
import importlib.resources
import inspect
import pickle
import traceback

import pytest

import inkit_async
import inkit_async.testing
from inkit_async._converter import structure
from tests.support.loopback import BATCH_JSON


def test_all_is_sorted_and_complete():
    """__all__ is sorted and names every public attribute of the package."""
    assert list(inkit_async.__all__) == sorted(inkit_async.__all__)
    public = {
        name
        for name, value in vars(inkit_async).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert public | {"__version__"} == set(inkit_async.__all__)


@pytest.mark.parametrize("module", [inkit_async, inkit_async.testing])
def test_every_public_name_is_documented(module):
    """Every exported class and function, and each of their public members, has a docstring."""
    missing = []
    for name in module.__all__:
        value = getattr(module, name)
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue
        if not inspect.getdoc(value):
            missing.append(name)
        if inspect.isclass(value):
            for member_name, member in vars(value).items():
                if member_name.startswith("_") or (
                    not callable(member) and not isinstance(member, property)
                ):
                    continue
                if not inspect.getdoc(member):
                    missing.append(f"{name}.{member_name}")
    assert missing == []


def test_testing_module_exports_are_sorted_and_exist():
    """inkit_async.testing has a sorted __all__ of names it defines."""
    names = inkit_async.testing.__all__
    assert list(names) == sorted(names)
    assert all(hasattr(inkit_async.testing, name) for name in names)


def test_py_typed_marker_ships():
    """The package carries py.typed, so type checkers use its annotations."""
    assert importlib.resources.files("inkit_async").joinpath("py.typed").is_file()


def test_version_comes_from_metadata():
    """__version__ is the installed distribution's version."""
    assert inkit_async.__version__ == importlib.metadata.version("inkit-async")


EXPORTED_CLASSES = sorted(
    name for name in inkit_async.__all__ if inspect.isclass(getattr(inkit_async, name))
)


@pytest.mark.parametrize("name", EXPORTED_CLASSES)
def test_exported_classes_name_the_package_as_their_module(name):
    """Each exported class says inkit_async, in __module__, repr() and its pickle."""
    cls = getattr(inkit_async, name)
    assert cls.__module__ == "inkit_async"
    expected = f"<enum '{name}'>" if issubclass(cls, enum.Enum) else f"<class 'inkit_async.{name}'>"
    assert repr(cls) == expected
    pickled = pickle.dumps(cls)
    assert b"inkit_async._" not in pickled
    assert pickle.loads(pickled) is cls  # noqa: S301 - a pickle made here


def test_records_and_errors_pickle_under_the_package_name():
    """Instances pickle by the public name and come back equal; tracebacks name the package."""
    batch = structure(BATCH_JSON, inkit_async.Batch)
    retry = inkit_async.RetryEvent(method="GET", path="/batch/x", attempt=1, delay=0.5, reason="r")
    for record in (batch, retry, inkit_async.Backoff(initial=1), inkit_async.BatchStatus.FAILED):
        pickled = pickle.dumps(record)
        assert b"inkit_async._" not in pickled
        assert pickle.loads(pickled) == record  # noqa: S301 - a pickle made here
    error = inkit_async.WaitTimeoutError("rb_1 did not finish", batch=batch)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - a pickle made here
    assert type(copy) is inkit_async.WaitTimeoutError
    assert (copy.message, copy.batch) == (error.message, batch)
    line = traceback.format_exception_only(error)[-1]
    assert line == "inkit_async.WaitTimeoutError: rb_1 did not finish\n"
