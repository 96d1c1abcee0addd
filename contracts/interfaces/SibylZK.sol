// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ZK_VERIFY (DESIGN section 4), as a library.
/// @notice Checks a proof of a `prove`-mode model's inference natively, with the verifying
/// key the model registry names. The precompile takes the ABI encoding of its arguments
/// with no selector and answers `abi.encode(bool)`; a bad proof (malformed, truncated,
/// for other values or another key) is not valid, it never reverts. A proof is
/// `abi.encode(uint256[] instances, bytes snark)`, as prove-mode results and sidecars
/// give it. Gas: the model's base + perUnit × (inputs + outputs).
library SibylZK {
    address internal constant ZK_VERIFY = address(0x0804);

    function verify(
        bytes32 modelId,
        int256[] memory inputs,
        int256[] memory outputs,
        uint8 decimals,
        bytes memory proof
    ) internal view returns (bool valid) {
        (bool ok, bytes memory result) =
            ZK_VERIFY.staticcall(abi.encode(modelId, inputs, outputs, decimals, proof));
        return ok && result.length == 32 && abi.decode(result, (bool));
    }
}
