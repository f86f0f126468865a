"""VNFS capsules on the master: the editable tree, the packed content-addressed form, import/export, serving."""
