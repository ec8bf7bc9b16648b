"""`oslab up --stage provision`: what to create or change, decided from libvirt's facts
(``plan``), and the provisioner that applies it, from a spec to nodes that answer SSH
(``provisioner``)."""
