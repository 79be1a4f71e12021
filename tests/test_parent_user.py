"""What compile knows of the user a parent image runs as (plan.dockerfile_user, plan.base_user)."""

from __future__ import annotations

import pytest

from compiler.plan import dockerfile_user, is_root

CASES = [
    ("FROM python:3.11-slim\n", "root"),
    ("FROM docker.io/library/python:3.12@sha256:" + "a" * 64 + "\n", "root"),
    ("FROM scratch\nCOPY x /x\n", "root"),
    ("FROM ubuntu:22.04\n", None),  # another image: compile cannot know
    ("FROM ubuntu:22.04\nUSER app\nRUN true\nUSER 1000:1000\n", "1000:1000"),
    ("FROM python:3.11-slim\nUSER $APP_USER\n", None),  # a variable: known only when built
    ("FROM python:3.11-slim\nuser\tsvc\n", "svc"),  # instructions are case-insensitive, any blank separates
    ("FROM --platform=linux/amd64 ubuntu:22.04 AS Base\nUSER svc\nFROM base\nENV A=1\n", "svc"),
    ("FROM ubuntu:22.04 AS a\nUSER a\nFROM python:3.11-slim AS b\nFROM a\n", "a"),
    ("FROM ubuntu:22.04 AS a\nUSER a\nFROM a AS b\nUSER b\nFROM python:3.11\n", "root"),  # the final stage counts
    ("# escape=`\nFROM python:3.11-slim\nUSER `\n  svc\n", "svc"),
    ("FROM python:3.11-slim\nUSER \\\n  # a comment inside a continuation\n  svc\n", "svc"),
    ("FROM python:3.11-slim\nRUN <<EOF\nUSER nobody\nEOF\n", "root"),  # a heredoc's body is not an instruction
    ("FROM python:3.11-slim\nRUN cat <<-'END' > /x\n\tUSER nobody\n\tEND\nUSER app\n", "app"),
    ("FROM a\nFROM b AS a\n", None),  # FROM names only earlier stages: `a` here is an image
    ("", None),
    (b"\xff\xfe".decode("latin-1"), None),
]


@pytest.mark.parametrize(("text", "user"), CASES)
def test_dockerfile_user(text: str, user: str | None) -> None:
    assert dockerfile_user(text.encode("utf-8")) == user


def test_not_utf8_is_unknown() -> None:
    assert dockerfile_user(b"FROM python:3.11\nUSER \xff\n") is None


@pytest.mark.parametrize(("user", "root"), [("root", True), ("0", True), ("0:0", True), ("root:wheel", True),
                                            ("", True), ("app", False), ("1000", False), (None, False),
                                            ("rooter", False)])
def test_is_root(user: str | None, root: bool) -> None:
    assert is_root(user) is root
