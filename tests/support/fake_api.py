"""What the FakeInkit tests check in process and over a socket alike: bodies, names, answers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from inkit_async import AsyncInkit
    from inkit_async.testing import FakeInkit


#: Names a listing sorted by name must order without comparing kinds: "" is a string.
ODD_NAMES: list[str | None] = ["zeta", None, "", "alpha"]


def nested(depth: int) -> Any:
    """A value nesting lists *depth* levels deep (0: a scalar)."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def create_body(**render: object) -> bytes:
    """A create body of one render: ``merge_parameters`` {} and *render*'s keys."""
    return json.dumps(
        {"template_id": "t", "renders": [{"merge_parameters": {}, **render}]}
    ).encode()


def seed_odd_names(fake: FakeInkit) -> None:
    """Batches named as ODD_NAMES, in that order."""
    for name in ODD_NAMES:
        fake.add_batch(name=name)


async def names_by_sort(client: AsyncInkit) -> dict[str, list[str | None]]:
    """The names a listing sorted by name gives, both ways."""
    return {
        sort: [b.name async for b in client.batch.list(sort=sort, page_size=2)]
        for sort in ("name", "-name")
    }


#: Bodies for POST /v1/batch and the status the fake answers each with: not JSON (400), or
#: JSON against the documented create rules (422).
HOSTILE_BODIES: list[tuple[str, bytes, int, str]] = [
    ("empty", b"", 400, "empty"),
    ("not UTF-8", b'{"template_id": "\xff"}', 400, "UTF-8"),
    ("UTF-16", json.dumps({"template_id": "t"}).encode("utf-16"), 400, "UTF-8"),
    ("not JSON", b"{not json", 400, "not valid JSON"),
    ("NaN", b"NaN", 400, "NaN"),
    ("Infinity", b'{"template_id": Infinity}', 400, "Infinity"),
    ("huge float", create_body(name="x").replace(b'"x"', b"1e999"), 400, "out of range"),
    ("huge int", b'{"a": ' + b"9" * 5000 + b"}", 400, "out of range"),
    (
        "int beyond a float",
        create_body(name="x").replace(b'"x"', b"-1" + b"0" * 309),
        400,
        "out of range",
    ),
    ("lone surrogate", b'{"template_id": "\\ud800"}', 400, "surrogate"),
    ("deep", b"[" * 100_000 + b"]" * 100_000, 400, "67 levels"),
    ("deep object", b'{"a":' * 5_000 + b"1" + b"}" * 5_000, 400, "67 levels"),
    ("just too deep", json.dumps(nested(68)).encode(), 400, "67 levels"),
    ("an array", b"[1, 2]", 422, "JSON object"),
    ("a number", b"12", 422, "JSON object"),
    ("null", b"null", 422, "JSON object"),
    ("no template", b'{"renders": [{"merge_parameters": {}}]}', 422, "template_id"),
    ("template a number", b'{"template_id": 1e300, "renders": []}', 422, "template_id"),
    ("empty template", b'{"template_id": "", "renders": []}', 422, "template_id"),
    ("name a number", b'{"template_id": "t", "name": 5, "renders": []}', 422, "name"),
    ("no renders", b'{"template_id": "t"}', 422, "renders"),
    ("renders an object", b'{"template_id": "t", "renders": {"a": 1}}', 422, "renders"),
    ("a render a string", b'{"template_id": "t", "renders": ["x"]}', 422, "renders[0]"),
    ("merge_parameters a list", create_body(merge_parameters=[]), 422, "merge_parameters"),
    ("render name a list", create_body(name=[]), 422, "renders[0].name"),
    ("description a number", create_body(description=1), 422, "description"),
    (
        "destinations a list of names",
        create_body(destinations=["inkit_storage"]),
        422,
        "keyed by destination name",
    ),
    (
        "destinations a list of objects",
        create_body(destinations=[{"inkit_storage": {}}]),
        422,
        "keyed by destination name",
    ),
    ("a destination without a name", create_body(destinations={"": {}}), 422, "not be empty"),
    (
        "a destination's settings a string",
        create_body(destinations={"docusign": "x"}),
        422,
        "docusign must be an object",
    ),
]


def assert_refused(response: httpx.Response, status: int, fragment: str) -> None:
    """A 4xx JSON answer {"error": "..."} whose message holds *fragment*."""
    assert response.status_code == status, response.text[:200]
    message = response.json()["error"]
    assert isinstance(message, str)
    assert fragment in message
