// Compile Solidity sources with solc-js into <OUT_DIR>/<Contract>.json ({abi, bytecode}).
//
//   npm install --prefix /tmp/solc solc@0.8.30
//   NODE_PATH=/tmp/solc/node_modules node contracts/compile.js contracts/build \
//       contracts/examples/AIConsumer.sol
//
// Imports resolve relative to the repository root. The compiled artifacts are committed,
// so the node and its tests need no compiler; rerun this after changing a source.
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const root = path.resolve(__dirname, "..");
const [outDir, ...files] = process.argv.slice(2);
if (!outDir || files.length === 0) {
  console.error("usage: node contracts/compile.js OUT_DIR FILE.sol...");
  process.exit(2);
}
const sources = {};
for (const file of files) {
  const key = path.relative(root, path.resolve(file));
  sources[key] = { content: fs.readFileSync(path.resolve(file), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const findImports = (name) => {
  const file = path.join(root, name);
  return fs.existsSync(file)
    ? { contents: fs.readFileSync(file, "utf8") }
    : { error: `not found: ${name}` };
};
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  console.error(errors.map((e) => e.formattedMessage).join("\n"));
  process.exit(1);
}
fs.mkdirSync(outDir, { recursive: true });
for (const key of Object.keys(sources)) {
  for (const [name, contract] of Object.entries(output.contracts[key] || {})) {
    if (!contract.evm.bytecode.object) continue; // interfaces and libraries inlined
    const artifact = {
      contractName: name,
      source: key,
      compiler: solc.version(),
      abi: contract.abi,
      bytecode: "0x" + contract.evm.bytecode.object,
    };
    fs.writeFileSync(path.join(outDir, name + ".json"), JSON.stringify(artifact, null, 2) + "\n");
    console.log(`${key}: ${path.join(outDir, name + ".json")}`);
  }
}
