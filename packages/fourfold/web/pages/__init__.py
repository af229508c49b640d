"""One module per paper page: the form's inputs in, the numbers a template shows out (no HTTP here)."""
