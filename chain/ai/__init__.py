"""The AI side of the chain: async jobs (JOBS, deliveries and expiries) and, as the
refactor lands, the oracle, registries, attested transactions and replicas."""
