"""Authentication, the audited read path, and (later) RBAC with region scope."""
