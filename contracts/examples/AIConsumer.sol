// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {SibylAI} from "../interfaces/SibylAI.sol";

/// @title An on-chain consumer of Sibyl's AI precompiles.
/// @notice Runs a tensor model (INFER) and a text embedding (EMBED) and keeps the last
/// results. The block builder runs each call once on its sidecar; every other node
/// verifies the attested result, so reading `lastPrediction` costs nobody a model run.
contract AIConsumer {
    bytes32 public immutable model;
    bytes32 public immutable embedder;
    uint8 public constant DECIMALS = 6;

    int256[] public lastPrediction;
    uint32[] public lastShape;
    int256[] public lastEmbedding;
    uint256 public predictions;
    uint256 public failures;

    event Predicted(address indexed caller, int256[] output);
    event Embedded(address indexed caller, uint256 dimensions, int256 first);
    event CallFailed(address indexed caller, bytes reason);

    constructor(bytes32 model_, bytes32 embedder_) {
        model = model_;
        embedder = embedder_;
    }

    /// Run the model on `values` (fixed-point, 6 decimals); a failed call is recorded,
    /// not reverted, so the transaction and its block go on.
    function predict(int256[] calldata values, uint32[] calldata shape) external returns (bool) {
        (bool ok, int256[] memory output, uint32[] memory outShape, bytes memory reason) =
            SibylAI.infer(model, values, shape, DECIMALS);
        if (!ok) {
            failures += 1;
            emit CallFailed(msg.sender, reason);
            return false;
        }
        lastPrediction = output;
        lastShape = outShape;
        predictions += 1;
        emit Predicted(msg.sender, output);
        return true;
    }

    /// Embed `text` and keep the vector.
    function embedText(string calldata text) external returns (bool) {
        (bool ok, int256[] memory vector, bytes memory reason) = SibylAI.embed(embedder, text, DECIMALS);
        if (!ok) {
            failures += 1;
            emit CallFailed(msg.sender, reason);
            return false;
        }
        lastEmbedding = vector;
        emit Embedded(msg.sender, vector.length, vector.length > 0 ? vector[0] : int256(0));
        return true;
    }

    /// Predict twice in one transaction: two AI calls with call indices 0 and 1.
    function predictTwice(int256[] calldata a, int256[] calldata b, uint32[] calldata shape) external {
        this.predict(a, shape);
        this.predict(b, shape);
    }

    /// A view for eth_call: the model's output without storing it.
    function peek(int256[] calldata values, uint32[] calldata shape) external returns (int256[] memory) {
        (bool ok, int256[] memory output,, bytes memory reason) = SibylAI.infer(model, values, shape, DECIMALS);
        if (!ok) {
            assembly {
                revert(add(reason, 32), mload(reason))
            }
        }
        return output;
    }

    function predictionLength() external view returns (uint256) {
        return lastPrediction.length;
    }

    function embeddingLength() external view returns (uint256) {
        return lastEmbedding.length;
    }
}
