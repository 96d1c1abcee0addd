// viem's simulateBlocks and simulateCalls (eth_simulateV1) against a Sibyl dev node:
// a transfer from an account that holds nothing until a state override funds it, the
// next block's timestamp and fee recipient as overridden, ETH transfer logs, and a
// failing call reported as a failure; then the chain is checked to be unchanged.
//
// Usage: node tests/js/viem_simulate.mjs http://127.0.0.1:8545
// Prints one JSON line with what the simulations returned.

import assert from "node:assert/strict";
import { createPublicClient, defineChain, http, parseEther } from "viem";

const url = process.argv[2];
const sibyl = defineChain({
  id: 19183,
  name: "Sibyl dev",
  nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: [url] } },
});
const client = createPublicClient({ chain: sibyl, transport: http(url) });
const EMPTY = "0xc000000000000000000000000000000000000000";
const RECIPIENT = "0xc100000000000000000000000000000000000000";
const FEE_RECIPIENT = "0xc200000000000000000000000000000000000000";
const FUNDED = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const REVERTS = "0xc300000000000000000000000000000000000000";

const head = await client.getBlock();
const blocks = await client.simulateBlocks({
  blocks: [
    {
      blockOverrides: { time: head.timestamp + 100n, feeRecipient: FEE_RECIPIENT },
      stateOverrides: [
        { address: EMPTY, balance: parseEther("2") },
        { address: REVERTS, code: "0x60006000fd" }, // PUSH1 0 PUSH1 0 REVERT
      ],
      calls: [
        { from: EMPTY, to: RECIPIENT, value: parseEther("1") },
        { from: EMPTY, to: REVERTS, data: "0x" },
      ],
    },
    { calls: [{ from: RECIPIENT, to: EMPTY, value: parseEther("0.5") }] },
  ],
  traceTransfers: true,
});
assert.equal(blocks.length, 2);
assert.equal(blocks[0].number, head.number + 1n);
assert.equal(blocks[0].timestamp, head.timestamp + 100n);
assert.equal(blocks[0].miner.toLowerCase(), FEE_RECIPIENT);
assert.equal(blocks[1].number, head.number + 2n);
assert.equal(blocks[1].timestamp, head.timestamp + 112n);
const [send, failing] = blocks[0].calls;
assert.equal(send.status, "success");
assert.equal(send.gasUsed, 21000n);
assert.equal(send.logs.length, 1);
assert.equal(send.logs[0].address, "0xeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
assert.equal(BigInt(send.logs[0].data), parseEther("1"));
assert.equal(failing.status, "failure");
assert.equal(blocks[1].calls[0].status, "success");

const { results } = await client.simulateCalls({
  account: FUNDED,
  calls: [
    { to: RECIPIENT, value: parseEther("1") },
    { to: REVERTS, data: "0x" },
  ],
});
assert.equal(results[0].status, "success");
assert.equal(results[1].status, "success"); // no code there on chain: a plain call

assert.equal((await client.getBlock()).number, head.number);
assert.equal(await client.getBalance({ address: EMPTY }), 0n);
assert.equal(await client.getBalance({ address: RECIPIENT }), 0n);
console.log(
  JSON.stringify({
    numbers: blocks.map((b) => Number(b.number)),
    transferLog: send.logs[0].topics,
    calls: results.map((r) => r.status),
  }),
);
