"""certificates.expired: the rule that lets the webhook module drop an expired previous CA at once."""

from __future__ import annotations

import datetime

from ansible_collections.winkube.gmsa.plugins.module_utils.models import certificates as certs


def test_expired_is_judged_by_not_after():
    now = datetime.datetime(2026, 12, 5, tzinfo=datetime.timezone.utc)
    ca_pem, _key = certs.generate_ca('test CA', now - datetime.timedelta(days=10), 5)
    assert certs.expired(ca_pem, now)
    assert not certs.expired(ca_pem, now - datetime.timedelta(days=6))
