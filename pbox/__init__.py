"""pbox: the operator CLI of province-in-a-box (lab, deploy, and later init/preflight/audit/drill/bundle)."""
