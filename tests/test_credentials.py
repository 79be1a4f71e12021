"""Credentials never reach generated files: which URLs carry them, and what index URLs and proxies may be."""

from __future__ import annotations

import pytest

from compiler.credentials import masked_credentials
from compiler.schema import index_url_problem, proxy_problem


@pytest.mark.parametrize("text,masked", [
    ("https://pypi.example.com/simple", None),
    ("https://user:pass@pypi.example.com/simple", "https://***@pypi.example.com/simple"),
    ("https://token@pypi.example.com/simple", "https://***@pypi.example.com/simple"),
    ("https://u:p@ss@host/simple", "https://***@host/simple"),  # an '@' in the password is masked, too
    ("https://host/simple/@scope/pkg", None),  # an '@' in the path is not a user part
    ("--index-url=http://t@h/simple", "--index-url=http://***@h/simple"),
    ("lib @ git+https://oauth2:glpat@gitlab.example/lib.git", "lib @ git+https://***@gitlab.example/lib.git"),
    ("lib @ git+ssh://git@github.com/org/lib.git", None),  # an ssh user name is not a secret
    ("lib @ git+ssh://git:secret@github.com/org/lib.git", "lib @ git+ssh://***@github.com/org/lib.git"),
    ("pandas==2.2.2", None),
])
def test_masked_credentials(text: str, masked: str | None) -> None:
    assert masked_credentials(text) == masked


@pytest.mark.parametrize("url", ["https://pypi.example.com/simple", "http://10.0.0.1:8080/simple/",
                                 "https://[::1]:8443/simple", "https://m.example/s?a=1&b='x'"])
def test_good_index_urls(url: str) -> None:
    assert index_url_problem(url) is None


@pytest.mark.parametrize("url,message", [
    ("https://t@x/simple", "index URL 'https://***@x/simple' <where> carries credentials"),
    ("ftp://x/simple", "index URL 'ftp://x/simple' <where> is not an http(s) URL"),
    ("pypi.example.com/simple", "index URL 'pypi.example.com/simple' <where> is not an http(s) URL"),
    ("https://", "index URL 'https://' <where> is not an http(s) URL"),
    ("https://x:99999/", "invalid index URL 'https://x:99999/' <where>"),
    ("https://x/a b", "invalid index URL 'https://x/a b' <where>"),
    ("https://x/\nFROM evil", "invalid index URL 'https://x/\\nFROM evil' <where>"),
])
def test_bad_index_urls(url: str, message: str) -> None:
    problem = index_url_problem(url)
    assert problem is not None and problem.message(" <where>") == message


@pytest.mark.parametrize("value", ["http://proxy:3128", "https://proxy.corp.example", "${HTTPS_PROXY}",
                                   "http://${PROXY_USER}:${PROXY_PASSWORD}@proxy:3128", "http://jdoe:${PW}@proxy:3128",
                                   "http://${TOKEN}@proxy:3128", "http://${HOST}:${PORT}", "http://proxy:3128/a$$b"])
def test_good_proxies(value: str) -> None:
    assert proxy_problem(value) is None


@pytest.mark.parametrize("value,message", [
    ("http://jdoe:hunter2@proxy:3128", "proxy 'http://jdoe:***@proxy:3128' <where> holds a literal credential"),
    ("http://token@proxy:3128", "proxy 'http://***@proxy:3128' <where> holds a literal credential"),
    ("http://${USER}:hunter2@proxy:3128", "proxy 'http://${USER}:***@proxy:3128' <where> holds a literal credential"),
    ("http://${U}:pa$$w@proxy:3128", "proxy 'http://${U}:***@proxy:3128' <where> holds a literal credential"),
    ("http://$USER@proxy:3128", "proxy 'http://$USER@proxy:3128' <where> has a '$' that is not a ${NAME} reference"),
    ("http://${U}:p$w@proxy:3128", "proxy 'http://${U}:***@proxy:3128' <where> has a '$' that is not a ${NAME} reference"),
    ("proxy:3128", "proxy 'proxy:3128' <where> is not an http(s) URL"),
    ("socks5://proxy:1080", "proxy 'socks5://proxy:1080' <where> is not an http(s) URL"),
    ("http://proxy:3128\nx", "proxy 'http://proxy:3128\\nx' <where> contains a space or control character"),
])
def test_bad_proxies(value: str, message: str) -> None:
    problem = proxy_problem(value)
    assert problem is not None and problem.message(" <where>") == message
