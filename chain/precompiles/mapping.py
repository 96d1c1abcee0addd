"""Sibyl's additions to the precompile map, by address (DESIGN sections 4 and 6)."""

from chain.ai import registry
from chain.ai.jobs import JOBS, Jobs
from chain.precompiles import ai, llm, zk_prove
from chain.precompiles.executor_registry import ExecutorRegistry
from chain.precompiles.model_registry import ModelRegistry
from chain.precompiles.p256 import P256VERIFY, p256_verify
from chain.precompiles.zk_verify import ZK_VERIFY, zk_verify
from scheduler.contract import Scheduler
from scheduler.state import SCHEDULER

PRECOMPILES = {
    registry.INFER: ai.infer,
    registry.EMBED: ai.embed,
    registry.LLM: llm.complete,
    registry.ZK_PROVE: zk_prove.prove,
    registry.EXECUTOR_REGISTRY: ExecutorRegistry(),
    registry.MODEL_REGISTRY: ModelRegistry(),
    SCHEDULER: Scheduler(),
    JOBS: Jobs(),
    P256VERIFY: p256_verify,
    ZK_VERIFY: zk_verify,
}
