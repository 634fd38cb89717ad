"""Options are declared once, in ``ClientOptions``: every other spelling is held to it.

Typing forces a few second spellings: ``AsyncInkit``'s explicit signature (for IDEs and
the API reference), ``with_options``'s, and the ``VariantArguments``/``OptionArguments``
TypedDicts behind ``Engine.variant`` and ``FakeInkit.client(**options)``. These tests
fail when one of them disagrees with the record, in names, order, defaults or
annotations (compared as the strings written in the source), so drift cannot come back.
"""

from __future__ import annotations

import inspect
import math
import re
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from inkit_async import AsyncInkit, Backoff, BatchCache, Throttle
from inkit_async._config import (
    FORWARDED_OPTIONS,
    NOT_GIVEN,
    OPTION_SCOPE,
    PER_CALL_OPTIONS,
    ClientOptions,
    NotGiven,
    OptionArguments,
    OptionScope,
    VariantArguments,
)
from inkit_async.testing import FakeInkit
from tests.support.constants import TOKEN

FIELDS = attrs.fields(ClientOptions)
DOCS = Path(__file__).resolve().parents[2] / "docs"


def argument_annotation(field: attrs.Attribute[Any]) -> str:
    """The annotation of the argument that sets *field*: its converter's, else its own."""
    if field.converter is None:
        return str(field.type)
    first = next(iter(inspect.signature(field.converter).parameters.values()))
    return str(first.annotation)


def members(annotation: str) -> set[str]:
    """The members of a union written as ``a | b | None``, in any order."""
    return {part.strip() for part in annotation.split("|")}


def typed_dict_annotations(typed_dict: type) -> dict[str, str]:
    """A TypedDict's keys and their annotations as written (``from __future__`` strings)."""
    return {name: ref.__forward_arg__ for name, ref in typed_dict.__annotations__.items()}


def test_every_option_has_a_scope():
    """Each field says whether it is per call, shared with variants, or about the connection."""
    assert all(isinstance(field.metadata.get(OPTION_SCOPE), OptionScope) for field in FIELDS)
    assert PER_CALL_OPTIONS == (
        "timeout",
        "deadline",
        "max_retries",
        "max_retry_after",
        "backoff",
        "on_event",
        "default_headers",
    )
    assert set(FORWARDED_OPTIONS) == set(PER_CALL_OPTIONS) | {
        "max_concurrency",
        "throttle",
        "coalesce",
        "cache",
        "keep_responses",
    }


def test_async_inkit_signature_is_the_record():
    """AsyncInkit(...) takes exactly the record's fields, in order, with its defaults and types."""
    parameters = list(inspect.signature(AsyncInkit).parameters.values())
    assert [p.name for p in parameters] == [field.name for field in FIELDS]
    for parameter, field in zip(parameters, FIELDS, strict=True):
        assert parameter.default == field.default, field.name
        assert parameter.annotation == argument_annotation(field), field.name
    # The token may come first, by position; every other option is keyword-only.
    assert [p.kind for p in parameters] == [inspect.Parameter.POSITIONAL_OR_KEYWORD] + [
        inspect.Parameter.KEYWORD_ONLY
    ] * (len(parameters) - 1)


def test_with_options_signature_is_the_per_call_options():
    """with_options takes exactly the per-call options, each NOT_GIVEN unless passed."""
    parameters = dict(inspect.signature(AsyncInkit.with_options).parameters)
    del parameters["self"]
    assert tuple(parameters) == PER_CALL_OPTIONS
    by_name = attrs.fields_dict(ClientOptions)
    for name, parameter in parameters.items():
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, name
        assert parameter.default is NOT_GIVEN, name
        expected = members(argument_annotation(by_name[name])) | {"NotGiven"}
        assert members(parameter.annotation) == expected, name


def test_typed_dicts_are_the_records_arguments():
    """VariantArguments and OptionArguments: the scoped fields, typed as AsyncInkit's arguments."""
    by_name = attrs.fields_dict(ClientOptions)
    for typed_dict, names in (
        (VariantArguments, PER_CALL_OPTIONS),
        (OptionArguments, FORWARDED_OPTIONS),
    ):
        assert typed_dict.__required_keys__ == frozenset()
        annotations = typed_dict_annotations(typed_dict)
        assert tuple(annotations) == names, typed_dict.__name__
        for name, annotation in annotations.items():
            assert annotation == argument_annotation(by_name[name]), name


def test_fake_client_forwards_option_arguments():
    """FakeInkit.client takes its token, then **OptionArguments."""
    parameters = inspect.signature(FakeInkit.client).parameters
    assert [(p.name, p.kind) for p in parameters.values()][1:] == [
        ("api_token", inspect.Parameter.KEYWORD_ONLY),
        ("options", inspect.Parameter.VAR_KEYWORD),
    ]
    assert parameters["options"].annotation == "Unpack[OptionArguments]"


def _non_default_values() -> dict[str, object]:
    """A value other than the default for every option a FakeInkit client can take."""
    return {
        "timeout": 7,
        "deadline": 9.5,
        "max_retries": 5,
        "max_concurrency": 3,
        "max_retry_after": 12.5,
        "backoff": Backoff(initial=0.1, maximum=1.0, jitter=0.5),
        "on_event": print,
        "default_headers": {"X-Tenant": "t1"},
        "throttle": Throttle(rate_limit=50),
        "coalesce": False,
        "cache": BatchCache(ttl=5),
        "keep_responses": True,
    }


def test_every_forwarded_option_reaches_the_record():
    """A value for each forwarded option, through AsyncInkit and FakeInkit.client: all arrive."""
    values = _non_default_values()
    assert set(values) == set(FORWARDED_OPTIONS)
    for client in (
        AsyncInkit(TOKEN, **values),  # type: ignore[arg-type]
        FakeInkit().client(**values),  # type: ignore[arg-type]
    ):
        options = client._engine.options  # noqa: SLF001 - the record itself
        assert {name: getattr(options, name) for name in values} == values


def test_every_connection_option_reaches_the_record(tmp_path):
    """The options FakeInkit sets itself reach the record from AsyncInkit(...) too."""
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    given = {
        "api_token": "tok_other",
        "base_url": "http://127.0.0.1:9/v2",
        "proxy": "http://127.0.0.1:3128",
        "verify": str(bundle),
        "trust_env": False,
    }
    options = AsyncInkit(**given)._engine.options  # type: ignore[arg-type]  # noqa: SLF001
    assert {name: getattr(options, name) for name in given} == given
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    assert AsyncInkit(TOKEN, transport=transport)._engine.options.transport is transport  # noqa: SLF001
    names = [f.name for f in FIELDS if f.metadata[OPTION_SCOPE] is OptionScope.CONNECTION]
    assert set(names) == {*given, "http_client", "transport"}


def test_none_stands_for_the_same_defaults_everywhere(monkeypatch):
    """None for the token, root, backoff and throttle: the environment's, Backoff(), a Throttle."""
    monkeypatch.setenv("INKIT_API_TOKEN", "tok_env")
    monkeypatch.setenv("INKIT_BASE_URL", "http://127.0.0.1:9/env")
    record = ClientOptions()
    assert (record.api_token, record.base_url) == ("tok_env", "http://127.0.0.1:9/env")
    assert record.backoff == Backoff()
    assert record.throttle is True
    client = AsyncInkit()
    assert client._engine.options == record  # noqa: SLF001
    assert isinstance(client.throttle, Throttle)


def test_the_record_keeps_numbers_plain():
    """Numbers reach the record as plain int/float: a subclass's methods never run again."""

    class Seconds(float):
        def __float__(self) -> float:
            return math.nan

    class Count(int):
        def __index__(self) -> int:
            return 0

    client = AsyncInkit(TOKEN, timeout=Seconds(5.0), max_retries=Count(3))
    assert type(client.timeout) is float
    assert type(client.max_retries) is int
    assert (client.timeout, client.max_retries) == (5.0, 3)
    assert client._engine.options.attempt_deadline == 5.0  # noqa: SLF001


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"timeout": 10**400}, ValueError, "timeout must be a finite number > 0, got an int of"),
        ({"timeout": -1.0}, ValueError, "timeout must be a finite number > 0, got -1.0"),
        ({"timeout": 0}, ValueError, "timeout must be a finite number > 0, got 0"),
        ({"max_retry_after": 10**400}, ValueError, "max_retry_after must be a finite number >= 0"),
        ({"max_retry_after": "1"}, TypeError, "max_retry_after must be a number of seconds, got"),
        ({"max_retries": -1}, ValueError, "max_retries must be >= 0, got -1"),
        ({"max_concurrency": True}, TypeError, "max_concurrency must be an int, got bool"),
        ({"max_concurrency": 0}, ValueError, "max_concurrency must be >= 1, got 0"),
        ({"deadline": 0}, ValueError, "deadline must be a finite number > 0, got 0"),
        ({"deadline": -0.5}, ValueError, "deadline must be a finite number > 0, got -0.5"),
        ({"deadline": math.nan}, ValueError, "deadline must be a finite number > 0, got nan"),
        ({"deadline": math.inf}, ValueError, "deadline must be a finite number > 0, got inf"),
        ({"deadline": True}, TypeError, "deadline must be a number of seconds or None, got bool"),
        ({"deadline": "1"}, TypeError, "deadline must be a number of seconds or None, got str"),
    ],
)
def test_bad_numbers_are_refused_by_name(options, error, message):
    """Each number option is checked under its own name, an int too large for a float too."""
    with pytest.raises(error) as info:
        AsyncInkit(TOKEN, **options)
    assert str(info.value).startswith(message)


def test_a_float_subclass_cannot_lie_its_way_past_the_check():
    """A negative timeout whose comparisons say otherwise is refused by its stored value."""

    class Liar(float):
        def __lt__(self, other: object) -> bool:
            return False

        def __le__(self, other: object) -> bool:
            return False

        def __gt__(self, other: object) -> bool:
            return True

        def __ge__(self, other: object) -> bool:
            return True

    for name in ("timeout", "max_retry_after"):
        with pytest.raises(ValueError, match=f"^{name} must be a finite number"):
            AsyncInkit(TOKEN, **{name: Liar(-1.0)})


def test_every_option_is_documented():
    """Each option has an entry under Args in AsyncInkit's docstring and a row in the docs table."""
    docstring = inspect.getdoc(AsyncInkit) or ""
    args = docstring.split("Args:", 1)[1].split("Raises:", 1)[0]
    documented = set(re.findall(r"^    (\w+): ", args, flags=re.MULTILINE))
    table = (DOCS / "configuration.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(\w+)`", table, flags=re.MULTILINE))
    names = {field.name for field in FIELDS}
    assert names - documented == set()
    assert names - rows == set()


def test_not_given_is_one_value_that_shows_its_name():
    """NOT_GIVEN reads as itself in signatures, and stays itself when copied or pickled."""
    import copy
    import pickle

    assert repr(NOT_GIVEN) == "NOT_GIVEN"
    assert "= NOT_GIVEN" in str(inspect.signature(AsyncInkit.with_options))
    assert copy.copy(NOT_GIVEN) is NOT_GIVEN
    assert copy.deepcopy(NOT_GIVEN) is NOT_GIVEN
    assert pickle.loads(pickle.dumps(NOT_GIVEN)) is NOT_GIVEN  # noqa: S301 - our own bytes
    assert isinstance(NOT_GIVEN, NotGiven)
