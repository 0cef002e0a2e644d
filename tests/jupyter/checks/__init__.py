"""What each notebook of notebooks/ must show once run: `tests/jupyter/checks/<name>.py` (the notebook's file
name, `-` as `_`) defines `check(nb)`, called by test_notebooks on the freshly executed notebook. The helpers
to read a saved notebook's views are in tests/jupyter/test_notebooks.py (`view_of`, `cell_by_start`, `stdout`).
"""
