"""Small data for the feature-engineering tests."""

from __future__ import annotations

import pytest

@pytest.fixture(autouse=True)
def fresh_caches():
    from autodl.features import clear_caches

    clear_caches()
    yield
    clear_caches()


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield
