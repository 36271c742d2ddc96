"""Pure screening rules: identities, reason codes, policy, aggregation, lineage. No I/O."""
