"""A binding link's one-time token is a credential until it is opened: it never reaches a log line.

The token travels in the URL path (``/bind/<token>``), which the sidecar's access line records;
the line shows ``/bind/***`` instead. Covered: the normal opening, a second opening, an
opening that fails before the token is used up (the store is down), which leaves the token valid,
and mangled links that match no route (a trailing slash, an extra segment) and so leave it valid
too.
"""

from __future__ import annotations

import logging

import pytest
from yarl import URL

from sidecar.errors import StoreUnavailable
from tests.security.logcheck import rendered
from tests.sidecar.binding.conftest import Rig, make_rig, rig

__all__ = ["make_rig", "rig"]  # the binding suite's rig, as fixtures of this module


def token_of(url: str) -> str:
    return URL(url).path.rsplit("/", 1)[1]


async def test_link_token_opened_twice_is_never_logged(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    envelope = await rig.link("alice")
    url = envelope["data"]["url"]
    with caplog.at_level(logging.DEBUG):
        assert (await rig.open(url)).status == 303
        assert (await rig.open(url)).status == 404
    logged = rendered(caplog.records)
    assert "/bind/***" in logged
    assert token_of(url) not in logged


async def test_link_token_left_valid_by_a_failed_opening_is_never_logged(
    rig: Rig, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = (await rig.link("alice"))["data"]["url"]
    links = rig.store.binding_links
    working = links.consume

    async def store_down(*args: object, **kwargs: object) -> None:
        raise StoreUnavailable("database is locked")

    monkeypatch.setattr(links, "consume", store_down)
    with caplog.at_level(logging.DEBUG):
        assert (await rig.open(url)).status == 503
    monkeypatch.setattr(links, "consume", working)
    assert (await rig.open(url)).status == 303  # the failed opening left the token valid
    assert token_of(url) not in rendered(caplog.records)


@pytest.mark.parametrize("mangle", ["/bind/{token}/", "/bind/{token}/x", "/bind//{token}", "/BIND/{token}"])
async def test_link_token_in_mangled_path_like_bind_token_slash_is_never_logged(
    rig: Rig, caplog: pytest.LogCaptureFixture, mangle: str
) -> None:
    url = (await rig.link("alice"))["data"]["url"]
    with caplog.at_level(logging.DEBUG):
        response = await rig.client.get(mangle.format(token=token_of(url)), allow_redirects=False)
    assert response.status == 404
    logged = rendered(caplog.records)
    assert "bind/***" in logged.lower()
    assert token_of(url) not in logged
    assert (await rig.open(url)).status == 303  # the token was still valid: that is why it must not leak
