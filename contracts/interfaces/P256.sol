// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title P256VERIFY (DESIGN section 4): secp256r1 signature checks, RIP-7212's ABI.
/// @notice For passkeys and secure enclaves. The precompile takes `hash ‖ r ‖ s ‖ x ‖ y`
/// (32 bytes each) and returns the word 1 for a valid signature, nothing otherwise; it
/// costs 3450 gas and never reverts. `hash` is used as given (sha256 of the message, as
/// WebAuthn signs it); a high `s` is accepted.
library P256 {
    address internal constant P256VERIFY = address(0x0100);

    function verify(bytes32 hash, bytes32 r, bytes32 s, bytes32 x, bytes32 y)
        internal
        view
        returns (bool)
    {
        (bool ok, bytes memory result) = P256VERIFY.staticcall(abi.encode(hash, r, s, x, y));
        return ok && result.length == 32 && abi.decode(result, (uint256)) == 1;
    }
}
