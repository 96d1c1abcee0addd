// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title SCHEDULER (0x0000000000000000000000000000000000000a01), native.
/// @notice Recurring, optionally conditional calls that the chain itself runs at the top of
/// blocks: no keeper. The scheduler calls `msg.sender` (the scheduling contract) with
/// `data` at blocks startBlock, startBlock + frequency, ... numCalls times; the callee sees
/// `msg.sender == SCHEDULER`. `msg.value` prepays numCalls × gasLimit × maxFeePerGas; each
/// execution pays its gas at the block's base fee, and what is unused is refunded to the
/// owner when the schedule ends or is cancelled. An execution is skipped (and counted) when
/// the base fee exceeds maxFeePerGas, or when `predicate` is set and
/// `IPredicate(predicate).shouldExecute(callId, index)` (a staticcall of up to 100k gas,
/// taken out of gasLimit) returns false or reverts. Calls over the per-block gas cap wait
/// for the next block, in order. The scheduler must be called directly (not through
/// DELEGATECALL or CALLCODE). A schedule's last call must fall before block 2**48 and its
/// deposit must be below 2**96 wei.
interface IScheduler {
    event CallScheduled(
        uint256 indexed callId, address indexed owner, uint64 startBlock, uint64 frequency, uint64 numCalls
    );
    event CallExecuted(uint256 indexed callId, uint64 index, bool success, uint256 gasUsed);
    /// reason: 1 the base fee was above maxFeePerGas, 2 the predicate said no (or reverted),
    /// 3 cancelled by an earlier transaction of the same block
    event CallSkipped(uint256 indexed callId, uint64 index, uint8 reason);
    event CallCancelled(uint256 indexed callId, uint256 refund);
    event CallCompleted(uint256 indexed callId, uint256 refund);

    function schedule(
        bytes calldata data,
        uint64 startBlock,
        uint64 frequency,
        uint64 numCalls,
        uint64 gasLimit,
        uint256 maxFeePerGas,
        address predicate
    ) external payable returns (uint256 callId);

    function cancel(uint256 callId) external;

    /// status: 1 active, 2 done, 3 cancelled
    function getCall(uint256 callId)
        external
        view
        returns (
            address owner,
            bytes memory data,
            uint64 startBlock,
            uint64 frequency,
            uint64 numCalls,
            uint64 executed,
            uint64 gasLimit,
            uint256 maxFeePerGas,
            address predicate,
            uint256 deposit,
            uint64 nextBlock,
            uint8 status
        );

    function gasCapPerBlock() external view returns (uint256);
}

/// @notice What a predicate contract implements.
interface IPredicate {
    function shouldExecute(uint256 callId, uint64 index) external view returns (bool);
}
