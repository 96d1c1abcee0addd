"""The ``net_`` and ``web3_`` namespaces."""

from importlib.metadata import version
from platform import python_version

from eth_utils import keccak

from chain.node import Node
from rpc import params as p
from rpc.encoding import d
from rpc.params import Param, method


class NetApi:
    def __init__(self, node: Node) -> None:
        self.node = node

    @method()
    def net_version(self) -> str:
        return str(self.node.chain_config.chain_id)

    @method()
    def net_listening(self) -> bool:
        return True

    @method()
    def net_peerCount(self) -> str:
        return "0x0"

    @method()
    def web3_clientVersion(self) -> str:
        # A dev chain answers anvil's test methods, and says so first: tools that drive
        # a dev node (hardhat-network-helpers) recognise one by this prefix.
        prefix = "anvil-compatible/" if self.node.config.dev else ""
        return f"{prefix}sibyl/v{version('sibyl')}/linux/python{python_version()}"

    @method(Param(p.hex_bytes))
    def web3_sha3(self, data: bytes) -> str:
        return d(keccak(data))
