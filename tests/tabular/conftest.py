"""Fixtures shared by the tabular tests."""

import pytest
from sklearn.datasets import load_iris


@pytest.fixture(scope="module")
def one_openmp_thread():
    """HistGradientBoosting's OpenMP threads stall badly when a shared 2-core machine is busy
    (use with ``pytestmark = pytest.mark.usefixtures("one_openmp_thread")``)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True, as_frame=True)
