// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IJobs} from "../interfaces/IJobs.sol";

/// @title Ask for a proven inference; the values and their proof arrive by callback.
/// @notice Fund it (`fund`, which deposits into JOBS), then `request` an inference of a
/// model registered in `prove` mode: ZK_PROVE (0x…0803) returns a job id at once, and in
/// a later block JOBS calls `onProof` with `abi.encode(int256[] values, uint32[] shape,
/// bytes proof)` (status 1), a failure (2) or an expiry (3). Every node checked the proof
/// against this request's input before the callback ran, so the stored values need no
/// trusted executor. The proof (kilobytes: too much to store) stays in the delivery's
/// calldata and the `Proven` event; its hash is kept, for anyone to check it again with
/// ZK_VERIFY.
contract ProvedPrediction {
    address public constant ZK_PROVE = address(0x0803);
    IJobs public constant JOBS = IJobs(address(0x0a04));
    uint8 public constant DECIMALS = 6;
    uint64 public constant CALLBACK_GAS = 500_000;

    struct Prediction {
        uint8 status; // 0 pending, 1 proven, 2 failed, 3 expired
        int256[] values;
        uint32[] shape;
        bytes32 proofHash;
        uint64 settledBlock;
    }

    address public immutable owner;
    bytes32 public model;
    mapping(bytes32 => Prediction) private predictions;
    bytes32[] public jobs;
    uint256 public refused;
    bytes public lastRefusal;

    event Requested(bytes32 indexed jobId, int256[] values);
    event RequestRefused(bytes reason);
    event Proven(bytes32 indexed jobId, int256[] values, bytes proof);
    event NotProven(bytes32 indexed jobId, uint8 status);

    constructor(bytes32 model_) {
        owner = msg.sender;
        model = model_;
    }

    /// Deposit `msg.value` into JOBS for this contract's requests.
    function fund() external payable {
        JOBS.deposit{value: msg.value}();
    }

    /// Ask for a proof of the model's output on `values` (fixed-point, 6 decimals);
    /// returns the job id, or zero when ZK_PROVE refused (bad input, unknown model, a
    /// model not in prove mode, too little deposited): the reason is kept.
    function request(int256[] calldata values, uint32[] calldata shape, uint32 ttlBlocks)
        external
        returns (bytes32 jobId)
    {
        bytes memory input = abi.encode(
            model, values, shape, DECIMALS, this.onProof.selector, CALLBACK_GAS, ttlBlocks
        );
        (bool ok, bytes memory out) = ZK_PROVE.call(input);
        if (!ok) {
            refused += 1;
            lastRefusal = out;
            emit RequestRefused(out);
            return bytes32(0);
        }
        jobId = abi.decode(out, (bytes32));
        jobs.push(jobId);
        emit Requested(jobId, values);
    }

    function onProof(bytes32 jobId, uint8 status, bytes calldata output) external {
        require(msg.sender == address(JOBS), "ProvedPrediction: only JOBS calls back");
        Prediction storage prediction = predictions[jobId];
        prediction.status = status;
        prediction.settledBlock = uint64(block.number);
        if (status == 1) {
            bytes memory proof;
            (prediction.values, prediction.shape, proof) =
                abi.decode(output, (int256[], uint32[], bytes));
            prediction.proofHash = keccak256(proof);
            emit Proven(jobId, prediction.values, proof);
        } else {
            emit NotProven(jobId, status); // 2 FAILED, 3 EXPIRED: nothing to store
        }
    }

    function prediction(bytes32 jobId)
        external
        view
        returns (uint8 status, int256[] memory values, uint32[] memory shape, bytes32 proofHash)
    {
        Prediction storage p = predictions[jobId];
        return (p.status, p.values, p.shape, p.proofHash);
    }

    /// For tests and operators: point the contract at another model.
    function setModel(bytes32 model_) external {
        require(msg.sender == owner, "ProvedPrediction: owner only");
        model = model_;
    }

    function jobCount() external view returns (uint256) {
        return jobs.length;
    }

    function deposited() external view returns (uint256) {
        return JOBS.balanceOf(address(this));
    }

    function withdraw(uint256 amount) external {
        require(msg.sender == owner, "ProvedPrediction: owner only");
        JOBS.withdraw(amount);
        payable(owner).transfer(amount);
    }

    receive() external payable {}
}
