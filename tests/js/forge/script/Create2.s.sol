// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// The part of forge's cheatcode interface this script uses (forge-std is not installed).
interface Vm {
    function startBroadcast() external;
    function stopBroadcast() external;
}

contract Counter {
    uint256 public count = 7;
}

/// Deploys Counter with a salt: forge sends the deployment through the deterministic
/// CREATE2 deployer at 0x4e59b44847b379578588920cA78FbF26c0B4956C.
contract Create2Script {
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function run() external returns (address deployed) {
        vm.startBroadcast();
        deployed = address(new Counter{salt: bytes32(uint256(0x5161))}());
        vm.stopBroadcast();
    }
}
