"""One scrubber for every piece of upstream text (token-endpoint answers, GoTo and Graph error
bodies, storage messages) before it enters an exception, a log line, the stored quarantine
reason, a provisioning log, test-connection output or the status document.

Two passes:

- the secrets this process knows (client secret, refresh tokens, PAT, access tokens, the HTTP
  Basic credential), registered with :func:`register` where they are read, in every encoding an
  echo might use: raw, percent-encoded (``quote`` and ``quote_plus``), JSON-escaped,
  HTML-escaped and base64;
- shapes that carry a credential whatever its value: ``Basic``/``Bearer`` values, JWTs,
  ``refresh_token=`` / ``client_secret=`` / ``code=`` / ``access_token=`` / ``password=`` (and
  a few more) in forms and query strings, also percent-encoded, and the same names as JSON or
  Python-dict keys.

Nothing here imports the rest of gotosync, so every package can use it.
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET_LENGTH = 6  # shorter strings are too likely to be ordinary words to replace blindly
MAX_REGISTERED = 256  # access tokens are renewed hourly: the oldest ones are forgotten first
SUMMARY_CHARS = 300

# Parameter names whose value is a credential, in forms, query strings and headers.
_PARAMS = (
    "refresh_token",
    "client_secret",
    "code",
    "access_token",
    "id_token",
    "password",
    "passwd",
    "pat",
    "assertion",
    "client_assertion",
    "sig",
    "accountkey",
    "sharedaccesssignature",
    "x-functions-key",
    "api-key",
    "apikey",
)
_NAMES = "|".join(re.escape(n) for n in sorted(_PARAMS, key=len, reverse=True))
# As JSON keys "code" is GoTo's own error code ({"code": "NOT_FOUND"}), not an authorization code.
_KEY_NAMES = "|".join(re.escape(n) for n in sorted(_PARAMS, key=len, reverse=True) if n != "code")
# name=value (also %3D for "=", and value up to "&" or "%26"), not preceded by a name character.
_FORM = re.compile(
    rf"(?i)(?:(?<![A-Za-z0-9_.-])|(?<=%26)|(?<=%3F)|(?<=%20))({_NAMES})(=|%3D)((?:(?!%26)[^&\s\"'<>,;\\])*)",
)
# "name": "value" / 'name': 'value' / name="value" (JSON, Python reprs, header parameters).
_KEYED = re.compile(rf"(?i)([\"']?)(?<![A-Za-z0-9_.-])({_KEY_NAMES})\1(\s*[:=]\s*)([\"'])((?:\\.|(?!\4).)*)\4")
# Header lines: "Authorization: Basic ...", "x-functions-key: ...", "Cookie: ...".
_HEADER = re.compile(r"(?im)^(\s*(?:authorization|proxy-authorization|cookie|set-cookie|x-functions-key)\s*:\s*).+$")
# An HTTP authentication value: scrubbed unless it is a short lowercase word ("Basic client ...").
_AUTH = re.compile(r"(?i)\b(Basic|Bearer|Digest|Negotiate)(\s+|%20|\+)(?!(?-i:[a-z]{1,15})\b)[A-Za-z0-9._~+/%-]+=*")
_AUTH_WORDS = ("basic", "bearer", "digest", "negotiate")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_SPACE = re.compile(r"\s+")

_lock = threading.Lock()
_known: OrderedDict[str, tuple[str, ...]] = OrderedDict()
# Every registered spelling by its first MIN_SECRET_LENGTH characters (longest spelling first),
# rebuilt on change: a scrub looks each position of the text up once, however many secrets the
# process has seen (exports scrub every entry).
_index: dict[str, list[str]] | None = None


def variants(secret: str) -> tuple[str, ...]:
    """The spellings of ``secret`` an echoing server might send back, longest first."""
    raw = secret.encode("utf-8")
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        json.dumps(secret)[1:-1],
        html.escape(secret),
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    return tuple(sorted((f for f in forms if len(f) >= MIN_SECRET_LENGTH), key=len, reverse=True))


def register(*secrets: str | None) -> None:
    """Remembers secrets this process holds, so that every later :func:`scrub` removes them."""
    global _index
    with _lock:
        for secret in secrets:
            if not secret or len(secret) < MIN_SECRET_LENGTH:
                continue
            if secret in _known:
                _known.move_to_end(secret)
                continue
            _known[secret] = variants(secret)
            _index = None
            while len(_known) > MAX_REGISTERED:
                _known.popitem(last=False)


def forget_all() -> None:
    """Tests: starts again with no registered secret."""
    global _index
    with _lock:
        _known.clear()
        _index = None


def _build_index(spellings: Iterable[str]) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for value in sorted(set(spellings), key=len, reverse=True):  # longest first: no half-replaced secret
        index.setdefault(value[:MIN_SECRET_LENGTH], []).append(value)
    return index


def _registered_index() -> dict[str, list[str]]:
    global _index
    with _lock:
        if _index is None:
            _index = _build_index(v for group in _known.values() for v in group)
        return _index


def _mask_spellings(text: str, index: dict[str, list[str]]) -> str:
    """Every occurrence of an indexed spelling replaced by MASK, longest spelling first."""
    if not index or len(text) < MIN_SECRET_LENGTH:
        return text
    windows = {text[i : i + MIN_SECRET_LENGTH] for i in range(len(text) - MIN_SECRET_LENGTH + 1)}
    candidates = [v for prefix in windows if prefix in index for v in index[prefix]]
    for value in sorted(candidates, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without any registered or given secret and without any credential-shaped value."""
    if not text:
        return text
    given = _build_index(v for s in secrets if s and len(s) >= MIN_SECRET_LENGTH for v in variants(s))
    text = _mask_spellings(_mask_spellings(text, given), _registered_index())
    return _mask_shapes(text)


def _keyed_mask(m: re.Match[str]) -> str:
    quote_key, name, sep, quote_value = m.group(1), m.group(2), m.group(3), m.group(4)
    return f"{quote_key}{name}{quote_key}{sep}{quote_value}{MASK}{quote_value}"


def _mask_shapes(text: str) -> str:
    """The credential-shaped values; each pattern runs only when its marker is in the text."""
    folded = text.casefold()
    if ":" in text:
        text = _HEADER.sub(lambda m: m.group(1) + MASK, text)
    if any(word in folded for word in _AUTH_WORDS):
        text = _AUTH.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
    if "eyJ" in text:
        text = _JWT.sub(MASK, text)
    has_name = any(name in folded for name in _PARAMS)
    if has_name and (":" in text or "=" in text):
        text = _KEYED.sub(_keyed_mask, text)
    if has_name and ("=" in text or "%3d" in folded):
        text = _FORM.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return text


def summary(text: str, secrets: Iterable[str | None] = (), limit: int = SUMMARY_CHARS) -> str:
    """A scrubbed one-line summary of upstream text, at most ``limit`` characters."""
    line = _SPACE.sub(" ", scrub(text, secrets)).strip()
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"
