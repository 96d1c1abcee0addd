// Automine answers after inclusion: 50 back-to-back sends through ethers v6 over HTTP,
// then 50 over WebSocket; each send's receipt is there as soon as the send returns, and
// every tx.wait() resolves (on a chain that then goes idle, as anvil's does).
//
// Usage: node tests/js/automine.mjs http://127.0.0.1:8545
// Prints one JSON line {http, ws} with the hashes sent; exits non-zero on a hang or a
// missing receipt.

import assert from "node:assert/strict";
import { ethers } from "ethers";

const SENDS = 50;
const WAIT_TIMEOUT_MS = 30_000; // only bounds a hang; nothing is asserted about time
const KEYS = [
  "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a", // account 2
  "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6", // account 3
];
const RECIPIENT = "0x000000000000000000000000000000000000dEaD";

function within(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${WAIT_TIMEOUT_MS} ms`)), WAIT_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function backToBack(provider, key, label) {
  // ethers caches identical reads for 250 ms, the pending nonce included, so sends this
  // fast take their nonces from a NonceManager (as against anvil).
  const wallet = new ethers.NonceManager(new ethers.Wallet(key, provider));
  const hashes = [];
  for (let i = 0; i < SENDS; i++) {
    const tx = await wallet.sendTransaction({ to: RECIPIENT, value: 1n });
    const receipt = await provider.getTransactionReceipt(tx.hash);
    assert.ok(receipt, `${label} send ${i}: no receipt right after eth_sendRawTransaction returned`);
    const waited = await within(tx.wait(), `${label} tx.wait() of send ${i}`);
    assert.equal(waited.status, 1);
    hashes.push(tx.hash);
  }
  return hashes;
}

const url = process.argv[2];
const http = new ethers.JsonRpcProvider(url, undefined, { staticNetwork: true });
const ws = new ethers.WebSocketProvider(url.replace(/^http/, "ws"));
try {
  const done = {
    http: await backToBack(http, KEYS[0], "HTTP"),
    ws: await backToBack(ws, KEYS[1], "WebSocket"),
  };
  console.log(JSON.stringify(done));
} finally {
  http.destroy();
  await ws.destroy();
}
