// hardhat-network-helpers against the node, beyond what the sample's Lock test uses:
// mine, setBalance, impersonateAccount, takeSnapshot (and time.latest / latestBlock).
const {
  mine,
  setBalance,
  impersonateAccount,
  stopImpersonatingAccount,
  takeSnapshot,
  time,
} = require("@nomicfoundation/hardhat-network-helpers");
const { expect } = require("chai");

const STRANGER = "0x0000000000000000000000000000000000C0FFEE";

describe("network helpers", function () {
  it("mines blocks with a time interval", async function () {
    const block = await time.latestBlock();
    const start = await time.latest();
    await mine(5, { interval: 60 });
    expect(await time.latestBlock()).to.equal(block + 5);
    expect(await time.latest()).to.be.gte(start + 4 * 60);
  });

  it("sets a balance", async function () {
    await setBalance(STRANGER, 12345n);
    expect(await ethers.provider.getBalance(STRANGER)).to.equal(12345n);
  });

  it("sends from an impersonated account", async function () {
    const [owner] = await ethers.getSigners();
    await setBalance(STRANGER, ethers.parseEther("1"));
    await impersonateAccount(STRANGER);
    const stranger = await ethers.getSigner(STRANGER);
    const tx = await stranger.sendTransaction({ to: owner.address, value: 1000n });
    const receipt = await tx.wait();
    expect(receipt.status).to.equal(1);
    expect(receipt.from.toLowerCase()).to.equal(STRANGER.toLowerCase());
    await stopImpersonatingAccount(STRANGER);
  });

  it("restores a snapshot", async function () {
    const snapshot = await takeSnapshot();
    const block = await time.latestBlock();
    await setBalance(STRANGER, 1n);
    await mine(3);
    await snapshot.restore();
    expect(await time.latestBlock()).to.equal(block);
    expect(await ethers.provider.getBalance(STRANGER)).to.not.equal(1n);
  });
});
