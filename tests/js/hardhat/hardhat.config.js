// The hardhat toolbox's sample project, pointed at a Sibyl dev node: `npx hardhat test
// --network localhost` with SIBYL_RPC_URL naming the node (tests/test_hardhat.py).
// Contracts compile with solc-js from npm (the `solc` package), so hardhat never
// downloads a compiler.
const path = require("node:path");
const { subtask } = require("hardhat/config");
const { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } = require("hardhat/builtin-tasks/task-names");
require("@nomicfoundation/hardhat-toolbox");

const SOLC = require("solc/package.json").version;

subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async ({ solcVersion }, hre, runSuper) => {
  if (solcVersion !== SOLC) return runSuper();
  return {
    compilerPath: require.resolve("solc/soljson.js"),
    isSolcJs: true,
    version: SOLC,
    longVersion: require("solc").version().replace(".Emscripten.clang", ""),
  };
});

/** @type import('hardhat/config').HardhatUserConfig */
module.exports = {
  solidity: SOLC,
  networks: {
    // gas "auto": hardhat-ethers otherwise sends with a fixed gas limit to any node that
    // answers hardhat_metadata (anvil too) and counts on the node refusing a reverting
    // send, as Hardhat Network does; estimating lets the revert reach the test (README).
    localhost: { url: process.env.SIBYL_RPC_URL || "http://127.0.0.1:8545" },
  },
  mocha: { timeout: 120_000 },
};
