"""Fixtures for the sidecar tests: real ``sibyl sidecar serve`` processes on free ports.

Starting a sidecar costs seconds (torch's import), so the processes are shared per
module; tests that kill one start their own. The two dev LLM sidecars (transformers'
import and the model's load cost the most) are shared by the LLM runtime's and the job
dispatch's modules.
"""

import pytest
from sidecar_helpers import SidecarProcess, dev_spec, start_sidecars

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


@pytest.fixture(scope="session")
def two_llm_sidecars(tmp_path_factory):
    """Two processes serving the dev LLM (one executor key). A test that restarts one puts
    the new process in its place (``SidecarProcess.process``)."""
    spec = dev_spec("llm")
    other = SidecarSpec(**{**vars(spec), "name": "dev-llm-2"})
    sidecars = start_sidecars([spec, other], tmp_path_factory.mktemp("llm"), timeout=120)
    yield sidecars
    for sidecar in sidecars:
        sidecar.stop()
