"""Credentials in URLs are masked wherever fnn prints or records them."""

import pytest

from fnn.redact import mask, masked


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "postgresql+psycopg2://user:s3cretPW@db:5432/sweeps",
            "postgresql+psycopg2://user:***@db:5432/sweeps",
        ),
        ("sqlite://user:s3cretPW@//tmp/x.db", "sqlite://user:***@//tmp/x.db"),
        ("postgresql://u:p@ss@h/d", "postgresql://u:***@h/d"),  # an unescaped @ in the password
        (
            "fnn: --storage mysql://root:pw@h/db: cannot connect",
            "fnn: --storage mysql://root:***@h/db: cannot connect",
        ),
        ("sqlite:///sweeps.db", "sqlite:///sweeps.db"),
        ("https://example.com/a@b and mail a@b.c", "https://example.com/a@b and mail a@b.c"),
    ],  # fmt: skip
)
def test_passwords_in_urls_are_masked_and_nothing_else(text, shown):
    assert mask(text) == shown


def test_masked_walks_configs():
    config = {"storage": "postgresql://u:pw@h/d", "argv": ["--storage", "x://a:b@c"], "n": 3}
    assert masked(config) == {"storage": "postgresql://u:***@h/d",
                              "argv": ["--storage", "x://a:***@c"], "n": 3}  # fmt: skip
