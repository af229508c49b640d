"""Package data: the shipped hierarchies (see PROVENANCE.md)."""
