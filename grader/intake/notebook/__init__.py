"""Notebook submissions: a student's ``.ipynb`` read into the assignment's files, never run.

The conversion is a pipeline of small steps, each testable alone:

1. ``cells``: the notebook's bytes -> its code cells (``nbformat`` reads,
   upgrades and validates the JSON; a file that is not a notebook is one
   clear problem);
2. ``magics``: IPython lines (``!pip install``, ``%matplotlib``) are taken out
   of a cell's text and remembered, so the rest parses as Python;
3. ``statements``: each cell is parsed with ``ast`` (never executed) and its
   top-level statements are sorted into what may be taken (imports, ``class``
   and ``def`` definitions, constants bound to a literal or a simple
   expression without calls) and what never runs (loops, calls, plots, the
   ``if __name__ == "__main__"`` block, assignments computed by a call);
4. ``placement``: the spec's mapping says which file each target goes to;
   each file gets its targets and, transitively, the helpers, constants and
   imports they use, in notebook order; a name that another file owns is
   imported from that file;
5. ``take``: applies the rules of the submission folder (a ``.py`` file the
   folder holds counts over the notebook, per file; several notebooks are read
   in name order) and writes the report of taken and left-out cells.

``model`` holds the report's pydantic models and imports nothing else, so the
results model can carry the report without loading the reader.
"""
