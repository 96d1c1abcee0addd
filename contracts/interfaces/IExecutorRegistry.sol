// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title EXECUTOR_REGISTRY (0x0000000000000000000000000000000000000a02), native.
/// @notice Executors are the keys whose signatures attest AI results. Capabilities are a
/// bitmask: 1 infer, 2 embed, 4 llm, 8 zk. `register` is payable: the value is the stake,
/// at least `minStake()`, returned by `deregister`. The admin may deactivate an executor.
interface IExecutorRegistry {
    event ExecutorRegistered(address indexed executor, uint256 capabilities, uint256 stake);
    event ExecutorDeregistered(address indexed executor, uint256 stake);
    event ExecutorDeactivated(address indexed executor);

    function register(uint256 capabilities) external payable;

    function deregister() external;

    function deactivate(address executor) external;

    function getExecutor(address executor)
        external
        view
        returns (uint256 capabilities, uint256 stake, bool active);

    /// capability: 0 infer, 1 embed, 2 llm, 3 zk
    function isExecutor(address executor, uint8 capability) external view returns (bool);

    function executors() external view returns (address[] memory);

    function minStake() external view returns (uint256);
}
