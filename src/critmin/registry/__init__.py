"""The agreements registry: agreements, parties, commitments, milestones and an audit log."""
