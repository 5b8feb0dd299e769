"""The signed browser-session cookie a binding link grants."""

from __future__ import annotations

from sidecar.binding.cookies import SessionCookies, derive_key

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def cookies(*secrets: str, clock: Clock | None = None) -> SessionCookies:
    return SessionCookies(list(secrets) or [SECRET], ttl_s=3600, secure=False, clock=clock or Clock())


def test_cookie_round_trip_names_user_and_account() -> None:
    jar = cookies()
    session = jar.read(jar.issue("alice", "main"))
    assert session is not None and (session.username, session.account) == ("alice", "main")


def test_cookie_with_changed_payload_is_refused() -> None:
    jar = cookies()
    body, mac = jar.issue("alice", "main").split(".")
    forged = cookies().issue("mallory", "main").split(".")[0]
    assert jar.read(f"{forged}.{mac}") is None
    assert jar.read(f"{body}.{mac[:-2]}AA") is None


def test_cookie_expires_after_its_lifetime() -> None:
    clock = Clock()
    jar = cookies(clock=clock)
    value = jar.issue("alice", "main")
    clock.now += 3599
    assert jar.read(value) is not None
    clock.now += 2
    assert jar.read(value) is None


def test_cookie_of_another_deployment_is_refused() -> None:
    assert cookies(SECRET).read(cookies(OTHER).issue("alice", "main")) is None


def test_cookie_survives_relay_secret_rotation() -> None:
    old = cookies(SECRET).issue("alice", "main")
    rotated = cookies(OTHER, SECRET)  # new secret first, old one still configured
    assert rotated.read(old) is not None


def test_cookie_garbage_is_refused_without_error() -> None:
    jar = cookies()
    for value in ("", "x", "a.b.c", "你好.世界", "!!!.???", "e30.AAAA", "W10." + "A" * 43, "x" * 5000):
        assert jar.read(value) is None


def test_cookie_key_is_derived_not_the_relay_secret() -> None:
    key = derive_key(SECRET)
    assert len(key) == 32 and SECRET.encode() not in key
    assert derive_key(SECRET) == key and derive_key(OTHER) != key


def test_cookie_repr_shows_no_key() -> None:
    assert SECRET not in repr(cookies()) and "keys=1" in repr(cookies())
