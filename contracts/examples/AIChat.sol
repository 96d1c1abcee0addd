// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IJobs} from "../interfaces/IJobs.sol";

/// @title Ask an LLM on-chain; its answer arrives by callback in a later block.
/// @notice Fund it (`fund`, which deposits into JOBS), then `ask` with an OpenAI-style
/// messages list; LLM (0x…0802) returns a job id at once and JOBS later calls `onAnswer`
/// with the completion (status 1), a failure (2) or an expiry (3). The builder ran the
/// model once; every other node checked the executors' signatures.
contract AIChat {
    address public constant LLM = address(0x0802);
    IJobs public constant JOBS = IJobs(address(0x0a04));
    uint64 public constant CALLBACK_GAS = 300_000;

    struct Answer {
        uint8 status; // 0 pending, 1 answered, 2 failed, 3 expired
        string text;
        uint32 promptTokens;
        uint32 completionTokens;
        uint64 answeredBlock;
    }

    address public immutable owner;
    bytes32 public immutable model;
    mapping(bytes32 => Answer) public answers;
    bytes32[] public jobs;
    uint256 public refused;
    bool public refuseCallbacks; // for tests: the callback reverts, the job still settles

    event Asked(bytes32 indexed jobId, string messagesJson);
    event AskRefused(bytes reason);
    event Answered(bytes32 indexed jobId, uint8 status, string text);

    constructor(bytes32 model_) {
        owner = msg.sender;
        model = model_;
    }

    /// Deposit `msg.value` into JOBS for this contract's questions.
    function fund() external payable {
        JOBS.deposit{value: msg.value}();
    }

    /// Ask; returns the job id, or zero when LLM refused (bad input, unknown model,
    /// maxTokens above the model's limit, too little deposited).
    function ask(string calldata messagesJson, uint32 maxTokens, uint32 ttlBlocks)
        external
        returns (bytes32 jobId)
    {
        bytes memory input = abi.encode(
            model, messagesJson, maxTokens, uint32(0), uint64(0), this.onAnswer.selector,
            CALLBACK_GAS, ttlBlocks
        );
        (bool ok, bytes memory out) = LLM.call(input);
        if (!ok) {
            refused += 1;
            emit AskRefused(out);
            return bytes32(0);
        }
        jobId = abi.decode(out, (bytes32));
        jobs.push(jobId);
        emit Asked(jobId, messagesJson);
    }

    function onAnswer(bytes32 jobId, uint8 status, bytes calldata output) external {
        require(msg.sender == address(JOBS), "AIChat: only JOBS calls back");
        require(!refuseCallbacks, "AIChat: callbacks refused");
        Answer storage answer = answers[jobId];
        answer.status = status;
        answer.answeredBlock = uint64(block.number);
        if (status == 1) {
            (answer.text, answer.promptTokens, answer.completionTokens) =
                abi.decode(output, (string, uint32, uint32));
        }
        emit Answered(jobId, status, answer.text);
    }

    function setRefuseCallbacks(bool refuse) external {
        require(msg.sender == owner, "AIChat: owner only");
        refuseCallbacks = refuse;
    }

    function jobCount() external view returns (uint256) {
        return jobs.length;
    }

    /// This contract's balance in JOBS, and a way to take it back.
    function deposited() external view returns (uint256) {
        return JOBS.balanceOf(address(this));
    }

    function withdraw(uint256 amount) external {
        require(msg.sender == owner, "AIChat: owner only");
        JOBS.withdraw(amount);
        payable(owner).transfer(amount);
    }

    receive() external payable {}
}
