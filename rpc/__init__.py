"""JSON-RPC server: HTTP and WebSocket on one port, the eth/net/web3/debug/txpool/sibyl namespaces, and the JWT-authenticated Engine API."""
