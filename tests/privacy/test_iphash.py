"""The keyed IP hash: HMAC-SHA256 of the address under the service's secret."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from netra_analytics.privacy.iphash import IpHasher

addresses = st.one_of(st.ip_addresses().map(str), st.text(max_size=60))


@given(secret=st.binary(min_size=1, max_size=80), address=addresses, other=addresses)
def test_the_hash_is_the_hmac_of_the_address_and_calls_do_not_leak_into_each_other(
    secret: bytes, address: str, other: str
) -> None:
    """An independent HMAC for every address, whatever was hashed before it (the keyed state
    is copied per call, never updated in place); no address, no hash."""
    hasher = IpHasher(secret)
    for value in (address, other, address):
        expected = hmac.new(secret, value.encode(), hashlib.sha256).hexdigest() if value else ""
        assert hasher(value) == expected
    assert hasher(None) == ""
