"""What the `new_backend` fixture (tests/conftest.py) gives: a maker of fresh stores of one kind."""

from collections.abc import Callable

from errorkit import Backend

NewBackend = Callable[[], Backend]
