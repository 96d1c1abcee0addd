// viem's multicall against a Sibyl dev node: the chain ships Multicall3 at its canonical
// address (genesis/dev.json), so `client.multicall` batches reads with no extra step.
//
// Usage: node tests/js/viem_multicall.mjs http://127.0.0.1:8545
// Prints one JSON line with what the batched reads returned.

import assert from "node:assert/strict";
import { createPublicClient, defineChain, http, parseAbi } from "viem";

const MULTICALL3 = "0xcA11bde05977b3631167028862bE2a173976CA11";
const FUNDED = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const abi = parseAbi([
  "function getEthBalance(address) view returns (uint256)",
  "function getChainId() view returns (uint256)",
  "function getBlockNumber() view returns (uint256)",
]);

const url = process.argv[2];
const sibyl = defineChain({
  id: 19183,
  name: "Sibyl dev",
  nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: [url] } },
  contracts: { multicall3: { address: MULTICALL3 } },
});
const client = createPublicClient({ chain: sibyl, transport: http(url) });

const results = await client.multicall({
  contracts: [
    { address: MULTICALL3, abi, functionName: "getEthBalance", args: [FUNDED] },
    { address: MULTICALL3, abi, functionName: "getChainId" },
    { address: MULTICALL3, abi, functionName: "getBlockNumber" },
  ],
});
for (const result of results) {
  if (result.status !== "success") throw new Error(`multicall read failed: ${result.error}`);
}
const [balance, chainId, blockNumber] = results.map((r) => r.result);
assert.equal(chainId, 19183n);
assert.equal(balance, await client.getBalance({ address: FUNDED }));
console.log(JSON.stringify({ balance: balance.toString(), chainId: Number(chainId), blockNumber: Number(blockNumber) }));
