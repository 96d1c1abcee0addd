// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IScheduler} from "../interfaces/IScheduler.sol";
import {SibylAI} from "../interfaces/SibylAI.sol";

/// @title An on-chain ML oracle with no keeper.
/// @notice `start` schedules `refresh` every `every` blocks; the chain runs it at the top of
/// those blocks, `refresh` asks the model (INFER) for a new prediction and stores it. The
/// block builder runs the model once; every other node checks the attestation.
contract ScheduledOracle {
    IScheduler public constant SCHEDULER = IScheduler(address(0x0a01));
    uint8 public constant DECIMALS = 6;

    address public immutable owner;
    bytes32 public immutable model;
    uint256 public callId;
    int256[] public prediction;
    uint256 public refreshes;
    uint256 public failures;
    uint256 public lastRefreshBlock;

    event Refreshed(uint256 indexed blockNumber, int256[] prediction);

    constructor(bytes32 model_) {
        owner = msg.sender;
        model = model_;
    }

    /// Schedule `times` refreshes, one every `every` blocks, from the next block. Send
    /// times × gasLimit × maxFeePerGas wei; what is unused comes back to this contract.
    function start(uint64 every, uint64 times, uint64 gasLimit, uint256 maxFeePerGas) external payable {
        require(msg.sender == owner, "only the owner");
        callId = SCHEDULER.schedule{value: msg.value}(
            abi.encodeCall(this.refresh, ()), uint64(block.number + 1), every, times, gasLimit, maxFeePerGas, address(0)
        );
    }

    function stop() external {
        require(msg.sender == owner, "only the owner");
        SCHEDULER.cancel(callId);
    }

    /// Run by the scheduler: the model's prediction on features of the current block.
    function refresh() external {
        require(msg.sender == address(SCHEDULER), "only the scheduler");
        int256[] memory features = new int256[](4);
        features[0] = int256(block.number % 10) * 100_000;
        features[1] = int256(block.timestamp % 7) * 100_000;
        features[2] = 500_000;
        features[3] = -250_000;
        uint32[] memory shape = new uint32[](2);
        shape[0] = 1;
        shape[1] = 4;
        (bool ok, int256[] memory output,,) = SibylAI.infer(model, features, shape, DECIMALS);
        if (!ok) {
            failures += 1;
            return;
        }
        prediction = output;
        refreshes += 1;
        lastRefreshBlock = block.number;
        emit Refreshed(block.number, output);
    }

    function predictionLength() external view returns (uint256) {
        return prediction.length;
    }

    /// Withdraw refunded deposits.
    function withdraw() external {
        require(msg.sender == owner, "only the owner");
        payable(owner).transfer(address(this).balance);
    }
}
