"""Files oslab fetches: the resumable, verified download (``download``) and reading the
installer ISO's label and boot files (``iso``)."""
