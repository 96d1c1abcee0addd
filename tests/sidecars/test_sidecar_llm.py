"""The LLM runtime (DESIGN section 7): real ``sibyl sidecar serve --runtime llm``
processes serving the bundled dev LLM through Submit / Result, byte-identical across
processes, honouring maxTokens, temperature and seed; and its upstream mode, forwarding
to a real OpenAI-compatible server process and signing what it answered."""

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from sidecar_helpers import CHAIN_ID, SidecarProcess, free_port

from sidecars.abi import LLM_ADDRESS, LLM_INPUT_TYPES, decode_llm_output
from sidecars.client import SidecarPool
from sidecars.config import DEV_EXECUTOR_KEY, SidecarSpec
from sidecars.runtimes import directory_model_id
from sidecars.upstream import upstream_model_id

HERE = Path(__file__).resolve().parent
DEV_LLM = HERE.parent.parent / "genesis" / "models" / "dev-llm"


def llm_input(model_id: bytes, question: str, max_tokens: int = 16, temperature: int = 0,
              seed: int = 0, messages_json: str | None = None) -> bytes:  # fmt: skip
    messages = messages_json or json.dumps([{"role": "user", "content": question}])
    return abi_encode(
        LLM_INPUT_TYPES,
        [model_id, messages, max_tokens, temperature, seed, b"\x01\x02\x03\x04", 100_000, 10],
    )


def run_job(pool: SidecarPool, model_id: bytes, data: bytes, job_id: bytes):
    assert pool.submit(job_id, LLM_ADDRESS, model_id, data, CHAIN_ID).status == "ok"
    deadline = time.monotonic() + 60
    while True:
        result = pool.result(job_id, LLM_ADDRESS, model_id, data, CHAIN_ID)
        if result.status != "pending":
            return result
        assert time.monotonic() < deadline, "no result within 60 s"
        time.sleep(0.05)


def pool_of(*sidecars: SidecarProcess) -> SidecarPool:
    pool = SidecarPool(deadline=30)
    for sidecar in sidecars:
        pool.add(sidecar.spec.name, sidecar.endpoint)
        assert pool.refresh(sidecar.spec.name) is not None
    return pool


def test_the_dev_llm_is_named_by_its_directorys_canonical_archive():
    listing = json.loads((DEV_LLM.parent / "models.json").read_text())
    (entry,) = [m for m in listing if m["kind"] == "llm"]
    assert entry["id"] == "0x" + directory_model_id(DEV_LLM).hex()


def test_the_llm_loads_on_its_first_job_and_only_then(two_llm_sidecars):
    # healthy and listed before any job, with transformers not yet imported; the first
    # job pays the load, once, and says so in the log
    sidecar = two_llm_sidecars[0]
    model_id = sidecar.spec.model_id
    result = run_job(pool_of(sidecar), model_id, llm_input(model_id, "hi ?"), keccak(b"first"))
    run_job(pool_of(sidecar), model_id, llm_input(model_id, "hi ?"), keccak(b"second"))
    assert result.status == "ok", result.error
    log = sidecar.log.read_text()
    assert f"event=serving runtime=llm model=0x{model_id.hex()}" in log
    assert "load=first_call" in log.split("event=serving runtime=llm", 1)[1].splitlines()[0]
    assert log.count("event=model_loading runtime=llm") == 1
    assert log.index("event=serving runtime=llm") < log.index("event=model_loading")
    assert log.count("event=model_loaded runtime=llm") == 1


def test_loading_the_llm_imports_no_transformers_until_a_job():
    probe = (
        "import sys; from pathlib import Path; from sidecars.runtimes import load_model; "
        f"model = load_model('llm', Path({str(DEV_LLM)!r})); "
        "print(model.loads_on_first_call, 'transformers' in sys.modules, 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False", "False"]


def test_an_llm_without_a_chat_template_is_refused_at_start(tmp_path):
    from sidecars.model import ModelLoadError
    from sidecars.runtimes import load_model

    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((DEV_LLM / name).read_bytes())
    with pytest.raises(ModelLoadError, match="no chat template"):
        load_model("llm", tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model("llm", tmp_path)


def test_two_llm_sidecar_processes_answer_byte_identically(two_llm_sidecars):
    first, second = (pool_of(s) for s in two_llm_sidecars)
    model_id = two_llm_sidecars[0].spec.model_id
    cases = [
        (
            llm_input(model_id, "what is the capital of france ?"),
            "paris is the capital of france .",
        ),
        (llm_input(model_id, "who wrote hamlet ?", temperature=700, seed=7), None),
    ]
    for n, (data, expected) in enumerate(cases):
        a = run_job(first, model_id, data, keccak(b"job a%d" % n))
        b = run_job(second, model_id, data, keccak(b"job b%d" % n))
        assert a.status == b.status == "ok", (a.error, b.error)
        assert a.output == b.output
        text, prompt_tokens, completion_tokens = decode_llm_output(a.output)
        assert prompt_tokens > 0 and 0 < completion_tokens <= 16
        if expected is not None:
            assert text == expected
    sampled_again = run_job(first, model_id, cases[1][0], keccak(b"job c"))
    assert sampled_again.output == a.output  # the same seed samples the same tokens


def test_max_tokens_is_honoured(two_llm_sidecars):
    pool = pool_of(two_llm_sidecars[0])
    model_id = two_llm_sidecars[0].spec.model_id
    data = llm_input(model_id, "what is the capital of france ?", max_tokens=2)
    result = run_job(pool, model_id, data, keccak(b"short"))
    text, _, completion_tokens = decode_llm_output(result.output)
    assert completion_tokens == 2 and text == "paris is"


def test_malformed_messages_are_refused_with_a_reason(two_llm_sidecars):
    pool = pool_of(two_llm_sidecars[0])
    model_id = two_llm_sidecars[0].spec.model_id
    data = llm_input(model_id, "", messages_json='[{"role": "user"}]')
    result = run_job(pool, model_id, data, keccak(b"bad"))
    assert (
        result.status == "failed"
        and "refused" in result.error
        and "messagesJson[0]" in (result.error)
    )


@pytest.fixture
def openai_server(tmp_path):
    port = free_port()
    with open(tmp_path / "openai.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(HERE / "openai_server.py"), str(DEV_LLM), str(port), "dev-llm"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
        except urllib.error.HTTPError:
            break  # it answers (404 for /)
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, (
                tmp_path / "openai.log"
            ).read_text()
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(10)


def test_upstream_mode_signs_what_an_openai_compatible_server_answered(openai_server, tmp_path):
    port = free_port()
    model_id = upstream_model_id("dev-llm@1")
    assert model_id == keccak(b"upstream:dev-llm@1")
    command = [
        sys.executable, "-m", "chain.cmd.cli", "sidecar", "serve", "--runtime", "llm",
        "--upstream", openai_server, "--upstream-model", "dev-llm@1", "--port", str(port),
        "--executor-key", str(DEV_EXECUTOR_KEY), "--model-id", "0x" + model_id.hex(),
    ]  # fmt: skip
    log = tmp_path / "upstream-sidecar.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    spec = SidecarSpec(name="upstream", runtime="llm", model_id=model_id)
    sidecar = SidecarProcess(spec, port, process, log)
    try:
        pool = SidecarPool(deadline=30)
        pool.add("upstream", sidecar.endpoint)
        deadline = time.monotonic() + 30
        while pool.refresh("upstream", timeout=0.5) is None:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert pool.info("upstream").model_ids == (model_id,)
        data = llm_input(model_id, "what do bees make ?")
        result = run_job(pool, model_id, data, keccak(b"upstream job"))
        assert result.status == "ok", result.error
        assert decode_llm_output(result.output)[0] == "bees make honey ."
    finally:
        sidecar.stop()
