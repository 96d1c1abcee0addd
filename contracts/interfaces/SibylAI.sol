// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Sibyl's AI precompiles (DESIGN section 4), as a library.
/// @notice The precompiles take the ABI encoding of their arguments with no function
/// selector, so they are called with a low-level call. A call that cannot produce an
/// output (unknown model, sidecar failure, malformed input) fails like a revert: `ok` is
/// false and `reason` holds the revert data (an `Error(string)`).
/// Gas depends on the model's schedule and the input only: base + perUnit × (number of
/// values for INFER, bytes of text for EMBED).
library SibylAI {
    address internal constant INFER = address(0x0800);
    address internal constant EMBED = address(0x0801);

    /// Run a tensor model. Values are fixed-point with `decimals` digits (1.5 with 6
    /// decimals is 1500000); the output uses the same decimals.
    function infer(bytes32 modelId, int256[] memory values, uint32[] memory shape, uint8 decimals)
        internal
        returns (bool ok, int256[] memory output, uint32[] memory outputShape, bytes memory reason)
    {
        bytes memory result;
        (ok, result) = INFER.call(abi.encode(modelId, values, shape, decimals));
        if (!ok) return (false, output, outputShape, result);
        (output, outputShape) = abi.decode(result, (int256[], uint32[]));
    }

    /// Embed a text: a vector of fixed-point values with `decimals` digits.
    function embed(bytes32 modelId, string memory text, uint8 decimals)
        internal
        returns (bool ok, int256[] memory vector, bytes memory reason)
    {
        bytes memory result;
        (ok, result) = EMBED.call(abi.encode(modelId, text, decimals));
        if (!ok) return (false, vector, result);
        vector = abi.decode(result, (int256[]));
    }
}
