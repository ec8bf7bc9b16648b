"""The lab's libvirt objects: their definitions rendered to XML (``definitions``, with the
jinja2 ``templates``), oslab's ``<metadata>`` inside them (``metadata``), and the operations on
one lab's objects in libvirt, with ownership checks (``lab_objects``)."""
