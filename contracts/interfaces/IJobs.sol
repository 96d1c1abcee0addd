// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title JOBS (0x0000000000000000000000000000000000000a04), native.
/// @notice Async AI calls (LLM 0x…0802, ZK_PROVE 0x…0803) create jobs here and return
/// their ids at once; the result comes back in a later block as a call from JOBS to the
/// requester's `callbackSelector(bytes32 jobId, uint8 status, bytes output)` with the job's
/// callback gas limit. Status: 0 pending, 1 OK (output as the precompile defines it),
/// 2 FAILED (the executor could not run it; output empty), 3 EXPIRED (no result within
/// ttlBlocks; delivered in exactly the deadline block). Every job ends in exactly one
/// callback; one that reverts or runs out of gas still settles the job.
///
/// Payment: a requester keeps a balance here (`deposit`, `depositFor`, `withdraw`).
/// Creating a job reserves from it the compute fee, `(gasBase + gasPerUnit × units) ×
/// tx.gasprice` from the model's schedule, and the callback's gas (its gas limit plus the
/// calldata of the largest output) at `tx.gasprice`; a requester whose balance does not
/// cover it gets `success == false` from the precompile, and no job. On a result the
/// executors who signed it (for a ZK_PROVE result, checked by its proof: the block's fee
/// recipient) are paid the fee and the block's fee recipient the gas the
/// callback used; the rest goes back to the requester's balance. A failed or expired job
/// refunds the fee too. JOBS must be called directly (not by DELEGATECALL or CALLCODE).
interface IJobs {
    event JobCreated(
        bytes32 indexed jobId,
        address indexed requester,
        bytes32 indexed modelId,
        address precompile,
        uint64 deadline,
        bytes input
    );
    event JobSettled(bytes32 indexed jobId, uint8 status, address[] signers);

    function deposit() external payable;
    function depositFor(address account) external payable;
    function withdraw(uint256 amount) external;
    function balanceOf(address account) external view returns (uint256);

    /// An unknown job has requester zero.
    function getJob(bytes32 jobId)
        external
        view
        returns (
            address requester,
            address precompile,
            bytes32 modelId,
            uint8 status,
            uint64 createdBlock,
            uint64 deadline,
            uint64 settledBlock
        );
}
