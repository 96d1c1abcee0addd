// An ethers v6 dApp session against a Sibyl node: deploy the ERC-20 with a
// ContractFactory, transfer, wait, read balances and events (queryFilter, a polling
// contract listener, WebSocket subscriptions), catch revert reasons as CALL_EXCEPTION,
// and use the node's own accounts through provider.getSigner().
//
// Usage: node tests/js/ethers_flow.mjs http://127.0.0.1:8545
// Prints one JSON line with what it did (for the Python side to cross-check) and exits
// non-zero, with the failing assertion, if anything is not as a dApp expects.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ethers } from "ethers";

const CHAIN_ID = 19183n;
const DEPLOYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const SUPPLY = ethers.parseEther("1000000");
const EVENT_TIMEOUT_MS = 60_000; // only bounds a hang; nothing is asserted about time

const url = process.argv[2];
if (!url) {
  console.error("usage: node ethers_flow.mjs <http url>");
  process.exit(2);
}
const wsUrl = url.replace(/^http/, "ws");
const artifact = JSON.parse(
  readFileSync(new URL("../fixtures/Token.json", import.meta.url), "utf8"),
);

function within(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${EVENT_TIMEOUT_MS} ms`)), EVENT_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Resolves {done}: a promise that settles when `provider` receives the answer to its next
// request of `method` (seen through ethers' own "debug" events).
async function answered(provider, method) {
  const ids = new Set();
  let resolve;
  const done = new Promise((settle) => (resolve = settle));
  const watch = (info) => {
    if (info.action === "sendRpcPayload") {
      for (const payload of [info.payload].flat()) {
        if (payload.method === method) ids.add(payload.id);
      }
    } else if (info.action === "receiveRpcResult") {
      if ([info.result].flat().some((result) => ids.has(result.id))) {
        provider.off("debug", watch);
        resolve();
      }
    }
  };
  await provider.on("debug", watch);
  return { done };
}

// Starts listening for `filter`; resolves {next}, the promise of the next matching event,
// once the node has answered the listener's eth_newFilter (HTTP) or eth_subscribe (WS).
async function listen(contract, filter, method) {
  const installed = await answered(contract.runner.provider, method);
  let resolve;
  const next = new Promise((settle) => (resolve = settle));
  const listener = (...args) => {
    contract.off(filter, listener);
    resolve(args.at(-1)); // the ContractEventPayload
  };
  await contract.on(filter, listener);
  await within(installed.done, `answer to ${method}`);
  return { next };
}

async function expectCallException(action, check) {
  try {
    await action();
  } catch (error) {
    assert.equal(error.code, "CALL_EXCEPTION", `expected CALL_EXCEPTION, got ${error.code}: ${error.message}`);
    check(error);
    return;
  }
  assert.fail("the call did not revert");
}

async function main() {
  // ethers reuses an identical request's answer for 250 ms by default, which hands two
  // quick transactions the same "pending" nonce on a chain that mines at once; a dApp
  // on an instant-mining dev chain turns that cache off, as we do.
  const options = { pollingInterval: 200, cacheTimeout: -1 };
  const provider = new ethers.JsonRpcProvider(url, undefined, options);
  const network = await provider.getNetwork();
  assert.equal(network.chainId, CHAIN_ID);

  // deploy
  const deployer = new ethers.Wallet(DEPLOYER_KEY, provider);
  const factory = new ethers.ContractFactory(artifact.abi, artifact.bytecode, deployer);
  const token = await factory.deploy("Ethers Token", "ETK", SUPPLY);
  await token.waitForDeployment();
  const deployReceipt = await token.deploymentTransaction().wait();
  assert.equal(deployReceipt.status, 1);
  const tokenAddress = await token.getAddress();
  assert.equal(deployReceipt.contractAddress, tokenAddress);
  assert.notEqual(await provider.getCode(tokenAddress), "0x");
  assert.equal(await token.name(), "Ethers Token");
  assert.equal(await token.balanceOf(deployer.address), SUPPLY);

  // the node's own accounts: remote signing through eth_accounts / eth_sendTransaction
  const accounts = await provider.listAccounts();
  assert.equal(accounts.length, 10);
  assert.equal(accounts[0].address, deployer.address);
  const remote = await provider.getSigner(1);
  const recipient = accounts[2].address;

  // transfer and wait
  const transfer = await token.transfer(remote.address, 1000n);
  const transferReceipt = await transfer.wait();
  assert.equal(transferReceipt.status, 1);
  assert.equal(transferReceipt.blockNumber, transfer.blockNumber ?? transferReceipt.blockNumber);
  const [parsed] = transferReceipt.logs.map((log) => token.interface.parseLog(log));
  assert.equal(parsed.name, "Transfer");
  assert.deepEqual([...parsed.args], [deployer.address, remote.address, 1000n]);
  assert.equal(await token.balanceOf(remote.address), 1000n);
  assert.equal(await token.balanceOf(deployer.address), SUPPLY - 1000n);

  // past events
  const minted = await token.queryFilter(token.filters.Transfer(ethers.ZeroAddress), 0, "latest");
  assert.equal(minted.length, 1);
  assert.equal(minted[0].args.value, SUPPLY);
  const toRemote = await token.queryFilter(token.filters.Transfer(null, remote.address), deployReceipt.blockNumber);
  assert.deepEqual(toRemote.map((e) => e.transactionHash), [transfer.hash]);

  // a live event through polling (eth_newFilter / eth_getFilterChanges)
  const polled = await listen(token, token.filters.Transfer(deployer.address, recipient), "eth_newFilter");
  const second = await token.transfer(recipient, 7n);
  await second.wait();
  const pollEvent = await within(polled.next, "polled Transfer event");
  assert.deepEqual([...pollEvent.args], [deployer.address, recipient, 7n]);
  assert.equal(pollEvent.log.transactionHash, second.hash);

  // live events through WebSocket subscriptions (eth_subscribe newHeads and logs)
  const wsProvider = new ethers.WebSocketProvider(wsUrl, undefined, options);
  const wsToken = token.connect(wsProvider);
  let headSeen;
  const head = new Promise((resolve) => (headSeen = resolve));
  const headsInstalled = await answered(wsProvider, "eth_subscribe");
  await wsProvider.once("block", headSeen);
  await within(headsInstalled.done, "answer to eth_subscribe newHeads");
  const subscribed = await listen(wsToken, wsToken.filters.Transfer(deployer.address, recipient), "eth_subscribe");
  const third = await token.transfer(recipient, 8n);
  const thirdReceipt = await third.wait();
  const pushEvent = await within(subscribed.next, "subscribed Transfer event");
  assert.deepEqual([...pushEvent.args], [deployer.address, recipient, 8n]);
  assert.equal(pushEvent.log.transactionHash, third.hash);
  assert.equal(await within(head, "newHeads block"), thirdReceipt.blockNumber);
  // The listeners are gone and their eth_unsubscribe went out first: once a later request
  // is answered on the same socket, closing it cancels nothing.
  await wsProvider.send("net_version", []);
  await wsProvider.destroy();

  // revert reasons
  const asRemote = token.connect(remote);
  await expectCallException(
    () => asRemote.transfer.staticCall(deployer.address, SUPPLY * 2n),
    (error) => assert.equal(error.reason, "Token: transfer amount exceeds balance"),
  );
  await expectCallException(
    () => asRemote.transfer(deployer.address, SUPPLY * 2n), // fails at gas estimation
    (error) => assert.equal(error.reason, "Token: transfer amount exceeds balance"),
  );
  await expectCallException(
    () => asRemote.onlyZero(),
    (error) => {
      assert.equal(error.revert?.name, "Unauthorized");
      assert.deepEqual([...error.revert.args], [remote.address]);
    },
  );
  await expectCallException(
    () => token.divide(0n),
    (error) => {
      assert.equal(error.revert?.name, "Panic");
      assert.equal(BigInt(error.revert.args[0]), 0x12n); // division by zero
    },
  );

  // remote signer: transactions, contract calls and messages signed by the node
  const before = await provider.getBalance(recipient);
  const payment = await remote.sendTransaction({ to: recipient, value: ethers.parseEther("0.5") });
  const paymentReceipt = await payment.wait();
  assert.equal(paymentReceipt.status, 1);
  assert.equal(paymentReceipt.from, remote.address);
  assert.equal(await provider.getBalance(recipient), before + ethers.parseEther("0.5"));
  const approval = await asRemote.approve(deployer.address, 55n);
  assert.equal((await approval.wait()).status, 1);
  assert.equal(await token.allowance(remote.address, deployer.address), 55n);
  const message = "ethers says hello to sibyl";
  assert.equal(ethers.verifyMessage(message, await remote.signMessage(message)), remote.address);
  const domain = { name: "Sibyl", version: "1", chainId: CHAIN_ID, verifyingContract: tokenAddress };
  const types = { Mail: [{ name: "to", type: "address" }, { name: "contents", type: "string" }] };
  const mail = { to: recipient, contents: "hi" };
  const typedSignature = await remote.signTypedData(domain, types, mail);
  assert.equal(ethers.verifyTypedData(domain, types, mail, typedSignature), remote.address);

  console.log(
    JSON.stringify({
      token: tokenAddress,
      deployer: deployer.address,
      remote: remote.address,
      recipient,
      transfers: [transfer.hash, second.hash, third.hash],
      payment: payment.hash,
      approval: approval.hash,
    }),
  );
  provider.destroy();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
