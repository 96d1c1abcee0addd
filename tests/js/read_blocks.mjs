// ethers v6 and viem reading a block that holds a scheduled transaction (type 0x10):
// the full block and the transaction by hash.
//
// Usage: node tests/js/read_blocks.mjs <http url> <block number> <scheduled tx hash>
// Prints one JSON line {ethers, viem}: [type, hash] of each transaction of the block.

import assert from "node:assert/strict";
import { ethers } from "ethers";
import { createPublicClient, http } from "viem";

const [url, number, scheduled] = process.argv.slice(2);
const provider = new ethers.JsonRpcProvider(url, undefined, { staticNetwork: true });
const client = createPublicClient({ transport: http(url) });
try {
  const block = await provider.getBlock(Number(number), true);
  const byEthers = block.prefetchedTransactions.map((tx) => [tx.type, tx.hash]);
  const tx = await provider.getTransaction(scheduled);
  assert.equal(tx.type, 0x10);
  assert.equal(tx.from, "0x0000000000000000000000000000000000000a01");

  const viemBlock = await client.getBlock({ blockNumber: BigInt(number), includeTransactions: true });
  const byViem = viemBlock.transactions.map((tx) => [Number(tx.typeHex), tx.hash]);
  const viemTx = await client.getTransaction({ hash: scheduled });
  assert.equal(viemTx.typeHex, "0x10");
  console.log(JSON.stringify({ ethers: byEthers, viem: byViem }));
} finally {
  provider.destroy();
}
