"""Importing the node changes nothing outside it (STYLE: no library patched at import):
pyrlp's decoder, py-trie's reads and eth_hash's keccak stay as their packages ship them
until the node's start-up (chain.startup) makes its choices; and a sidecar process runs
without py-evm or any of the node's modules."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROJECT_MODULES = sorted(
    ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
    for package in ("chain", "rpc", "scheduler", "sidecars", "genesis")
    for path in (REPO / package).rglob("*.py")
    if "_pb2" not in path.name and path.name != "__main__.py"
)


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_importing_every_module_leaves_pyrlp_pytrie_and_keccak_unmodified():
    code = f"""
import importlib, rlp.codec, trie, eth_hash.auto
from eth_hash.backends.pysha3 import backend as pysha3
decode_raw, get = rlp.codec.decode_raw, trie.HexaryTrie.get
for name in {PROJECT_MODULES!r}:
    importlib.import_module(name)
assert rlp.codec.decode_raw is decode_raw, "pyrlp's decode_raw was replaced at import"
assert trie.HexaryTrie.get is get, "py-trie's HexaryTrie.get was replaced at import"
assert eth_hash.auto.keccak.hasher != pysha3.keccak256, "keccak's backend was chosen at import"
from chain.startup import prepare_process
prepare_process()
assert rlp.codec.decode_raw is not decode_raw and trie.HexaryTrie.get is get
assert eth_hash.auto.keccak.hasher == pysha3.keccak256
print("ok", len({PROJECT_MODULES!r}))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


def test_a_sidecar_runs_without_pyevm_or_the_node():
    # py-evm (``eth``) and the node's packages cannot be imported at all in this process
    code = """
import sys
class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("eth", "chain", "trie", "scheduler", "rpc"):
            raise ImportError(f"{name} is not installed here")
sys.meta_path.insert(0, Absent())
import sidecars.serve, sidecars.client, sidecars.manager
sys.argv = ["sidecars.serve", "--help"]
import runpy
try:
    runpy.run_module("sidecars.serve", run_name="__main__")
except SystemExit as exit:
    assert exit.code == 0, exit.code
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert "--executor-key" in result.stdout


def test_the_sidecar_image_modules_need_nothing_the_image_lacks():
    # docker/sidecar.Dockerfile installs sidecars/ alone: no py-evm, no node, no genesis/
    code = """
import sys
class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("eth", "chain", "trie", "scheduler", "rpc", "genesis"):
            raise ImportError(f"{name} is not in the sidecar image")
sys.meta_path.insert(0, Absent())
import sidecars.serve, sidecars.server, sidecars.runtimes, sidecars.upstream, sidecars.zk
print("ok")
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_node_loads_no_model_library_grpc_or_keystore_before_its_port_opens():
    # what `sibyl run --sidecars none` imports before it serves: the model libraries are
    # the sidecars' (tens to hundreds of MB) and never the node's; each of the others
    # costs the first JSON-RPC answer a part of a second and is needed later, if at all
    code = """
import sys
import chain.cmd.cli, chain.cmd.run, chain.node
late = ("numpy", "torch", "onnxruntime", "transformers", "sentence_transformers", "grpc",
        "eth_account", "eth_keyfile", "sidecars.runtimes", "sidecars.server",
        "sidecars.manager")
print(sorted(name for name in late if name in sys.modules))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
