// The hardhat node that bench/peers.py measures: Sibyl's dev chain id, so that the
// bench's pre-signed transactions are valid on every node; no contracts to compile.
module.exports = { networks: { hardhat: { chainId: 19183 } } };
