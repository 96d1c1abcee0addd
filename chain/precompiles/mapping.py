"""Sibyl's additions to the precompile map, by address (DESIGN sections 4 and 6)."""

from chain import registry
from chain.precompiles import ai
from chain.precompiles.executor_registry import ExecutorRegistry
from chain.precompiles.model_registry import ModelRegistry

PRECOMPILES = {
    registry.INFER: ai.infer,
    registry.EMBED: ai.embed,
    registry.EXECUTOR_REGISTRY: ExecutorRegistry(),
    registry.MODEL_REGISTRY: ModelRegistry(),
}
