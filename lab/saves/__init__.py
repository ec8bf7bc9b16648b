"""Saved labs: a lab's disks and state kept under a name, and moved between hosts as one file."""
