"""Debian node images built on the host: a flat package repository, a base image per role
made with mmdebstrap, a cloud-init NoCloud seed per node, the cache pool and the local repo
server (see the README section on Debian 13 labs)."""
