"""The credential policy: which parts of a URL are secrets, how they are masked, and why one is refused.

Pure text rules (no file, no engine): errors.py masks what it prints with them, schema.py and inputs.py refuse
values that would write a secret into a generated file, explain.py and init.py mask what they show.
"""

from __future__ import annotations

import re

# The user part of a URL (`scheme://user:pass@`, `scheme://token@`); greedy, so `u:p@ss@` is one.
USERINFO_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^/?#\s]*)@")
_REFERENCES_ONLY = re.compile(r"(?:\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)*(?::(?:\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)*)?\Z")
_VARIABLES_RE = re.compile(r"^(?:\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)+\Z")  # ${NAME} or $NAME, meant as references

IN_DOCKERFILE = "the Dockerfile and the image history"
REQUIREMENTS_WRITTEN = "the generated requirements.txt and the image"
RUNTIME_SECRET_HINT = ("it would be written into the Dockerfile and the image; give the secret when the container runs "
                       "instead (docker run -e NAME=..., or a secret store), not in dockwright.yaml")
PROXY_CREDENTIAL_HINT = ("dockwright.yaml and manifest.json are committed; write ${NAME} references, like "
                         "http://${PROXY_USER}:${PROXY_PASSWORD}@proxy:3128, which the builder expands from its "
                         "environment when it builds")


def credentials_hint(written: str) -> str:
    """Why a credential in a URL is refused, and what to do instead."""
    return (f"it would be written into {written}; instead, use a mirror that needs no token, or an "
            "authenticating proxy set in builders.<name>.proxy: the builder passes it as Docker's predefined "
            "proxy build args, which docker history does not record")


def is_credential(scheme: str, userinfo: str) -> bool:
    """Any user part of an http(s) URL is a credential (a password, or a token as the user); for other
    schemes, such as git+ssh://git@host, only a password is."""
    return scheme.lower().rsplit("+", 1)[-1] in ("http", "https") or ":" in userinfo


def masked_credentials(text: str) -> str | None:
    """text with the credentials of each URL in it shown as '***', or None when no URL carries any.

    Any user part of an http(s) URL is a credential (`user:pass@`, or a token as `token@`); for other
    schemes, such as git+ssh://git@host, only a password is.
    """
    found = False

    def mask(match: re.Match[str]) -> str:
        nonlocal found
        scheme, userinfo = match.group("scheme"), match.group("userinfo")
        if is_credential(scheme, userinfo):
            found = True
            return f"{scheme}://***@"
        return match.group(0)

    masked = USERINFO_RE.sub(mask, text)
    return masked if found else None


def mask_credentials(text: str, col: int = 1) -> tuple[str, int]:
    """text with the user part of every URL that carries a credential shown as `***`, and where 1-based col
    of text now stands. A user part made only of $NAME / ${NAME} references holds no secret and stays, and so
    does one masked already (`***`, `user:***`)."""
    out: list[str] = []
    last = 0
    new_col = col
    for m in USERINFO_RE.finditer(text):
        userinfo = m.group("userinfo")
        if (not is_credential(m.group("scheme"), userinfo) or _REFERENCES_ONLY.match(userinfo)
                or userinfo == "***" or userinfo.endswith(":***")):  # masked already
            continue
        start, end = m.span("userinfo")
        out += [text[last:start], "***"]
        last = end
        if col - 1 >= end:
            new_col -= (end - start) - 3
        elif col - 1 > start:
            new_col -= col - 1 - start
    if not out:
        return text, col
    return "".join(out) + text[last:], new_col


def proxy_secret(value: str) -> tuple[re.Match[str] | None, str, bool]:
    """The user part of a proxy URL, the secret in it (the password, or a user name alone, taken for a
    token) and whether it has a password."""
    userinfo = USERINFO_RE.match(value)
    user, colon, password = userinfo.group("userinfo").partition(":") if userinfo else ("", "", "")
    return userinfo, (password if colon else user), bool(colon)


def shown_proxy(value: str) -> str:
    """A proxy URL as it may be shown: a literal secret as '***'; ${NAME} references, which hold none, kept."""
    userinfo, secret, has_password = proxy_secret(value)
    if userinfo is None or not secret or _VARIABLES_RE.match(secret):
        return value
    user = userinfo.group("userinfo").partition(":")[0]
    masked = f"{user}:***" if has_password else "***"
    return f"{userinfo.group('scheme')}://{masked}@{value[userinfo.end():]}"
