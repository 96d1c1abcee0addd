// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title MODEL_REGISTRY (0x0000000000000000000000000000000000000a03), native.
/// @notice Models are named by id = keccak256 of the artifact's bytes. kind: 0 torch,
/// 1 onnx, 2 embed, 3 llm, 4 zk. mode: 0 attest (signatures), 1 replicate (every node
/// re-runs), 2 prove. Only the admin (set in the genesis) may change the registry.
/// A prove-mode model (kind zk) is registered with the overload that ends in its
/// verifying key hash (the eleven-argument one refuses mode 2); every node that validates
/// its calls must hold the key's files (kzg.srs, settings.json, vk.key).
interface IModelRegistry {
    event ModelRegistered(bytes32 indexed id, string name, uint8 kind);
    event ModelRemoved(bytes32 indexed id);

    function registerModel(
        bytes32 id,
        string calldata name,
        uint8 kind,
        uint32[] calldata inputShape,
        uint32[] calldata outputShape,
        uint8 decimals,
        uint8 quorum,
        uint8 mode,
        uint64 gasBase,
        uint64 gasPerUnit,
        uint32 outputLimit
    ) external;

    function registerModel(
        bytes32 id,
        string calldata name,
        uint8 kind,
        uint32[] calldata inputShape,
        uint32[] calldata outputShape,
        uint8 decimals,
        uint8 quorum,
        uint8 mode,
        uint64 gasBase,
        uint64 gasPerUnit,
        uint32 outputLimit,
        bytes32 verifyingKeyHash
    ) external;

    function removeModel(bytes32 id) external;

    /// A prove-mode model's verifying key hash; zero for a model of another mode.
    function verifyingKeyHash(bytes32 id) external view returns (bytes32);

    function getModel(bytes32 id)
        external
        view
        returns (
            string memory name,
            uint8 kind,
            uint32[] memory inputShape,
            uint32[] memory outputShape,
            uint8 decimals,
            uint8 quorum,
            uint8 mode,
            uint64 gasBase,
            uint64 gasPerUnit,
            uint32 outputLimit
        );

    function isRegistered(bytes32 id) external view returns (bool);

    function modelIds() external view returns (bytes32[] memory);

    function admin() external view returns (address);
}
