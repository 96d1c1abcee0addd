"""JSON-RPC: HTTP and WebSocket on one port with the eth/net/web3/debug/txpool/sibyl
namespaces, and the JWT-authenticated Engine API on its own port."""
