// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {SibylAI} from "../interfaces/SibylAI.sol";
import {SibylZK} from "../interfaces/SibylZK.sol";

/// @title Inference nobody has to trust: a prove-mode model and on-chain proof checks.
/// @notice `predict` runs a model registered in `prove` mode through INFER: the block
/// builder's sidecar proves the output, and every node checks that proof instead of an
/// executor's signature. `check` verifies a proof someone brings (ZK_VERIFY), and
/// `accept` keeps outputs only once their proof verifies.
contract ProvenInference {
    bytes32 public immutable model;
    uint8 public constant DECIMALS = 6;

    int256[] public lastPrediction;
    int256[] public lastAccepted;
    uint256 public failures;

    event Predicted(int256[] output);
    event Accepted(int256[] inputs, int256[] outputs);
    event Rejected(int256[] inputs, int256[] outputs);

    constructor(bytes32 model_) {
        model = model_;
    }

    function predict(int256[] calldata values, uint32[] calldata shape) external returns (bool) {
        (bool ok, int256[] memory output,,) = SibylAI.infer(model, values, shape, DECIMALS);
        if (!ok) {
            failures += 1;
            return false;
        }
        lastPrediction = output;
        emit Predicted(output);
        return true;
    }

    function check(int256[] calldata inputs, int256[] calldata outputs, bytes calldata proof)
        public
        view
        returns (bool)
    {
        return SibylZK.verify(model, inputs, outputs, DECIMALS, proof);
    }

    function accept(int256[] calldata inputs, int256[] calldata outputs, bytes calldata proof)
        external
        returns (bool)
    {
        if (!check(inputs, outputs, proof)) {
            emit Rejected(inputs, outputs);
            return false;
        }
        lastAccepted = outputs;
        emit Accepted(inputs, outputs);
        return true;
    }

    function predictionLength() external view returns (uint256) {
        return lastPrediction.length;
    }
}
