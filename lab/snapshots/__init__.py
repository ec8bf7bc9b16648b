"""Lab-wide snapshots in libvirt (``snapshot``), and the checkpoints the CLI and the installer
take and revert to, with the nodes' clocks put right afterwards (``checkpoint``)."""
