"""The lab: systemd-nspawn containers (and KVM guests) on a private bridge, as test hosts."""
