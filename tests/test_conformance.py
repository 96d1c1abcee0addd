"""Ethereum's consensus tests in CI: the committed BlockchainTest sample imports through
``sibyl init`` and the import path of ``sibyl import``, every case as its fixture says."""

from pathlib import Path

from conformance.blockchain_tests import run_paths, summary

SAMPLE = Path(__file__).resolve().parent / "conformance" / "fixtures"


def test_the_blockchain_test_sample_passes():
    outcomes = list(run_paths([SAMPLE]))
    failures = [f"{o.folder}/{o.name}: {o.reason}" for o in outcomes if o.status == "failed"]
    assert not failures, "\n".join(failures)
    passed = sum(line.get("passed", 0) for line in summary(outcomes) if "fork" in line)
    assert passed == 216  # every case of the sample: Frontier to Cancun and the transitions
