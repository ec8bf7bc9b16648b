"""A lab's power: stop, start, suspend and resume, decided from libvirt's state."""
