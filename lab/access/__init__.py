"""Reaching a lab's nodes: the SSH connection (``ssh``), the lab's state directory with its
keys and passwords (``state``), and what the lab has, for `status`, `destroy` and known_hosts
(``inventory``)."""
