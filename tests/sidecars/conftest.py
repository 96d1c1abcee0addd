"""Fixtures for the sidecar tests: real ``sibyl sidecar serve`` processes on free ports.

Starting a sidecar costs seconds (torch's import), so the processes are shared per
module; tests that kill one start their own.
"""

import pytest
from sidecar_helpers import SidecarProcess, start_sidecars

from sidecars.config import SidecarSpec


@pytest.fixture(scope="module")
def sidecar_factory(tmp_path_factory):
    """``start(*specs)`` starts sidecar processes; all stop at the end of the module."""
    started: list[SidecarProcess] = []
    log_dir = tmp_path_factory.mktemp("sidecar-logs")

    def start(*specs: SidecarSpec) -> list[SidecarProcess]:
        sidecars = start_sidecars(list(specs), log_dir)
        started.extend(sidecars)
        return sidecars

    yield start
    for sidecar in started:
        sidecar.stop()
